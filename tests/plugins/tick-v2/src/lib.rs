//! Test plugin `tick`, version 2.0.0 (see ../tick-v1/src/tick.rs).

const VERSION: &str = "2.0.0";
include!("../../tick-v1/src/tick.rs");
