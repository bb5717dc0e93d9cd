//! Transaction reports and statements (stub: filled in by its owner).
