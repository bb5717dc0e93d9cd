//! Subscriptions and recurring billing (stub).
