//! Tells the unit tests which SIMD level the build machine's CPU has.
//!
//! Tests of the AVX-512 kernels cannot run on a CPU without AVX-512, and the
//! kernels then fall back to the portable code. Rust's test harness can
//! only skip a test where it is compiled, so this script looks at the CPU
//! it runs on (the machine that will run `cargo test`) and sets
//! `cfg(build_cpu_avx512)` where it has AVX-512F and AVX-512VL (what
//! `cpu::simd::level()` calls level 2). Tests of those kernels are then
//! compiled as ignored elsewhere, their reason naming the level; where the
//! binary runs on another CPU than the one that built it, they fail
//! instead of passing unchecked (see `cpu::testing::require_avx512`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(build_cpu_avx512)");
    let same_machine = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
    if same_machine && host_has_avx512() {
        println!("cargo:rustc-cfg=build_cpu_avx512");
    }
}

#[cfg(target_arch = "x86_64")]
fn host_has_avx512() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
}

#[cfg(not(target_arch = "x86_64"))]
fn host_has_avx512() -> bool {
    false
}
