//! Compile-time guarantees: every mistake a user can make in a service or a `ShmData` type is a
//! compile error on its own span that says what to do instead. One tiny program per mistake under
//! `ui/<group>/<mistake>.rs`, with the compiler's expected output next to it.
//!
//! The expected output is the one of the toolchain pinned below; other compilers word things
//! differently, so there the test is skipped. Regenerate with `TRYBUILD=overwrite` and review
//! every changed `.stderr` like code.

#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr files are those of rustc 1.95"
)]
#[test]
fn every_mistake_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
}
