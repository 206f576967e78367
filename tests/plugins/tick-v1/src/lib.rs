//! Test plugin `tick`, version 1.0.0 (see tick.rs).

const VERSION: &str = "1.0.0";
include!("tick.rs");
