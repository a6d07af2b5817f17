//! Benchmark support (see the benches).
