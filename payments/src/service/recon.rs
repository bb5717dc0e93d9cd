//! Reconciliation with the PSP's settlement report (stub: filled in by its owner).
