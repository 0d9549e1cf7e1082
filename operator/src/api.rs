//! The `warren.dev/v1alpha1` API types.
