//! Shared helpers for the end-to-end tests in this directory (added as the stages land).
