//! Hot elementwise loops compiled for several instruction sets and picked at
//! run time (AVX-512, AVX2+FMA, baseline). Every variant runs the same
//! scalar-order code, only wider, so results do not depend on the variant.

/// Defines a function whose body is compiled once per instruction set; the
/// widest one this CPU supports runs.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn wide512($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide256($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                if $crate::cpu::simd::level() >= $crate::cpu::simd::AVX512 {
                    // SAFETY: the CPU supports these features (checked at run time).
                    return unsafe { wide512($($arg),*) };
                }
                if $crate::cpu::simd::level() == $crate::cpu::simd::AVX2 {
                    // SAFETY: as above.
                    return unsafe { wide256($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

/// Calls the statistics sum `f` of [`super::lane_sums`] at the level the
/// kernels dispatch to (AVX-512, or else AVX2: the caller checks it is one).
#[cfg(target_arch = "x86_64")]
macro_rules! vector_sums {
    ($f:ident($($a:expr),* $(,)?)) => {
        if level() >= AVX512 {
            super::lane_sums::avx512::$f($($a),*)
        } else {
            super::lane_sums::avx2::$f($($a),*)
        }
    };
}

/// Code compiled without SIMD intrinsics (what the compiler makes of plain loops).
pub const PORTABLE: u8 = 0;
/// AVX2 and FMA: 8 f32 lanes.
pub const AVX2: u8 = 1;
/// AVX-512 F and VL: 16 f32 lanes.
pub const AVX512: u8 = 2;

/// The environment variable that lowers the level the kernels dispatch to.
pub const OVERRIDE_VAR: &str = "MACER_SIMD";

/// A level's name, as `MACER_SIMD` takes it.
pub fn level_name(level: u8) -> &'static str {
    match level {
        AVX512 => "avx512",
        AVX2 => "avx2",
        _ => "portable",
    }
}

/// The highest level this CPU supports.
pub fn detected_level() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                return AVX512;
            }
            return AVX2;
        }
    }
    PORTABLE
}

/// The level `name` asks for, if this CPU has it.
pub fn parse_level(name: &str) -> Result<u8, String> {
    let wanted = match name.trim().to_ascii_lowercase().as_str() {
        "avx512" => AVX512,
        "avx2" => AVX2,
        "portable" => PORTABLE,
        _ => {
            return Err(format!(
                "{OVERRIDE_VAR}={name:?} is not a SIMD level; expected avx512, avx2 or portable"
            ))
        }
    };
    let cpu = detected_level();
    if wanted > cpu {
        return Err(format!(
            "{OVERRIDE_VAR}={name} asks for more than this CPU has (its level: {})",
            level_name(cpu)
        ));
    }
    Ok(wanted)
}

/// The level asked for by `MACER_SIMD` (unset or empty: the CPU's own).
pub fn requested_level() -> Result<u8, String> {
    match std::env::var(OVERRIDE_VAR) {
        Ok(v) if !v.trim().is_empty() => parse_level(&v),
        _ => Ok(detected_level()),
    }
}

static LEVEL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(u8::MAX);

/// The level every dispatch point uses: [`AVX512`], [`AVX2`] or [`PORTABLE`].
/// The CPU's own, lowered by `MACER_SIMD` (read once; an invalid value
/// leaves the CPU's level, and [`requested_level`] reports why) or by
/// [`set_level`].
#[inline]
pub fn level() -> u8 {
    use std::sync::atomic::Ordering;
    let l = LEVEL.load(Ordering::Relaxed);
    if l != u8::MAX {
        return l;
    }
    let l = requested_level().unwrap_or_else(|_| detected_level());
    LEVEL.store(l, Ordering::Relaxed);
    l
}

/// Sets the level by name for the rest of the process (between ops: a
/// kernel running meanwhile may mix levels, whose results agree within the
/// kernels' stated tolerances).
pub fn set_level(name: &str) -> Result<u8, String> {
    let l = parse_level(name)?;
    LEVEL.store(l, std::sync::atomic::Ordering::Relaxed);
    Ok(l)
}

pub use super::lanes::{lane_total, LaneSums};
use super::lanes::{BLOCK, LANES};

/// `d` where `y > 0`, else 0, as a bit mask (no branch, so loops vectorise).
#[inline(always)]
fn keep_if_positive(d: f32, y: f32) -> f32 {
    f32::from_bits(d.to_bits() & ((y > 0.0) as u32).wrapping_neg())
}

/// Adds the f32 lane sums of one block to the f64 lanes.
#[inline(always)]
fn fold_block(acc: &mut LaneSums, s: &[f32; LANES], q: &[f32; LANES]) {
    for l in 0..LANES {
        acc[0][l] += s[l] as f64;
        acc[1][l] += q[l] as f64;
    }
}

multiversion! {
    /// The portable form of [`shifted_sums`].
    fn shifted_sums_portable(x: &[f32], k: f32, acc: &mut LaneSums) {
        for blk in x.chunks(BLOCK) {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            let mut it = blk.chunks_exact(LANES);
            for v in &mut it {
                let v: &[f32; LANES] = v.try_into().unwrap();
                for l in 0..LANES {
                    let d = v[l] - k;
                    s[l] += d;
                    q[l] += d * d;
                }
            }
            for (l, &v) in it.remainder().iter().enumerate() {
                let d = v - k;
                s[l] += d;
                q[l] += d * d;
            }
            fold_block(acc, &s, &q);
        }
    }
}

/// Adds `(x - k, (x - k)^2)` into `acc`: 16 f32 lanes per block of 256,
/// each block then into the f64 lanes.
pub fn shifted_sums(x: &[f32], k: f32, acc: &mut LaneSums) {
    #[cfg(target_arch = "x86_64")]
    if level() >= AVX2 {
        // SAFETY: the CPU has the level's features (checked at run time).
        return unsafe { vector_sums!(shifted_sums(x, k, acc)) };
    }
    shifted_sums_portable(x, k, acc)
}

multiversion! {
    /// `sum x` in 16 f32 lanes (element `i` into lane `i % 16`), the lanes
    /// then added in order.
    pub fn lane_sum(x: &[f32]) -> f32 {
        let mut s = [0f32; LANES];
        let mut it = x.chunks_exact(LANES);
        for v in &mut it {
            let v: &[f32; LANES] = v.try_into().unwrap();
            for l in 0..LANES {
                s[l] += v[l];
            }
        }
        for (l, &v) in it.remainder().iter().enumerate() {
            s[l] += v;
        }
        s.iter().fold(0.0, |a, &v| a + v)
    }
}

multiversion! {
    /// The portable form of [`grad_sums`].
    fn grad_sums_portable(dy: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
        for (db, xb) in dy.chunks(BLOCK).zip(x.chunks(BLOCK)) {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            let mut di = db.chunks_exact(LANES);
            let mut xi = xb.chunks_exact(LANES);
            for (d, v) in (&mut di).zip(&mut xi) {
                let d: &[f32; LANES] = d.try_into().unwrap();
                let v: &[f32; LANES] = v.try_into().unwrap();
                for l in 0..LANES {
                    s[l] += d[l];
                    q[l] += d[l] * (v[l] - m);
                }
            }
            for (l, (&d, &v)) in di.remainder().iter().zip(xi.remainder()).enumerate() {
                s[l] += d;
                q[l] += d * (v - m);
            }
            fold_block(acc, &s, &q);
        }
    }
}

/// Adds `(dy, dy * (x - m))` into `acc`, blocked like [`shifted_sums`].
pub fn grad_sums(dy: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
    #[cfg(target_arch = "x86_64")]
    if level() >= AVX2 {
        // SAFETY: the CPU has the level's features (checked at run time).
        return unsafe { vector_sums!(grad_sums(dy, x, m, acc)) };
    }
    grad_sums_portable(dy, x, m, acc)
}

multiversion! {
    /// The portable form of [`grad_sums_relu`].
    fn grad_sums_relu_portable(dy: &[f32], x: &[f32], m: f32, mask: (f32, f32), acc: &mut LaneSums) {
        let (sa, sb) = mask;
        for (db, xb) in dy.chunks(BLOCK).zip(x.chunks(BLOCK)) {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            let mut di = db.chunks_exact(LANES);
            let mut xi = xb.chunks_exact(LANES);
            for (d, v) in (&mut di).zip(&mut xi) {
                let d: &[f32; LANES] = d.try_into().unwrap();
                let v: &[f32; LANES] = v.try_into().unwrap();
                for l in 0..LANES {
                    let dl = keep_if_positive(d[l], v[l] * sa + sb);
                    s[l] += dl;
                    q[l] += dl * (v[l] - m);
                }
            }
            for (l, (&d, &v)) in di.remainder().iter().zip(xi.remainder()).enumerate() {
                let d = keep_if_positive(d, v * sa + sb);
                s[l] += d;
                q[l] += d * (v - m);
            }
            fold_block(acc, &s, &q);
        }
    }
}

/// [`grad_sums`] with `dy` taken as 0 where `x * sa + sb <= 0` (behind
/// the mask of a ReLU that followed `x * sa + sb`).
pub fn grad_sums_relu(dy: &[f32], x: &[f32], m: f32, mask: (f32, f32), acc: &mut LaneSums) {
    #[cfg(target_arch = "x86_64")]
    if level() >= AVX2 {
        // SAFETY: the CPU has the level's features (checked at run time).
        return unsafe { vector_sums!(grad_sums_relu(dy, x, m, mask, acc)) };
    }
    grad_sums_relu_portable(dy, x, m, mask, acc)
}

multiversion! {
    /// The portable form of [`masked_grad_sums_in_place`].
    fn masked_grad_sums_in_place_portable(d: &mut [f32], y: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
        for ((db, yb), xb) in d.chunks_mut(BLOCK).zip(y.chunks(BLOCK)).zip(x.chunks(BLOCK)) {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            let mut di = db.chunks_exact_mut(LANES);
            let mut yi = yb.chunks_exact(LANES);
            let mut xi = xb.chunks_exact(LANES);
            for ((d, yv), v) in (&mut di).zip(&mut yi).zip(&mut xi) {
                let d: &mut [f32; LANES] = d.try_into().unwrap();
                let yv: &[f32; LANES] = yv.try_into().unwrap();
                let v: &[f32; LANES] = v.try_into().unwrap();
                for l in 0..LANES {
                    d[l] = keep_if_positive(d[l], yv[l]);
                    s[l] += d[l];
                    q[l] += d[l] * (v[l] - m);
                }
            }
            let (yrest, xrest) = (yi.remainder(), xi.remainder());
            for (l, d) in di.into_remainder().iter_mut().enumerate() {
                *d = keep_if_positive(*d, yrest[l]);
                s[l] += *d;
                q[l] += *d * (xrest[l] - m);
            }
            fold_block(acc, &s, &q);
        }
    }
}

/// [`masked_grad_sums`] in place: `d` (the gradient) is masked where it
/// lies, for a pass that has just written it.
pub fn masked_grad_sums_in_place(d: &mut [f32], y: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
    #[cfg(target_arch = "x86_64")]
    if level() >= AVX2 {
        // SAFETY: the CPU has the level's features (checked at run time).
        return unsafe { vector_sums!(masked_grad_sums_in_place(d, y, x, m, acc)) };
    }
    masked_grad_sums_in_place_portable(d, y, x, m, acc)
}

multiversion! {
    /// `y = max(x * a + b, 0)`: [`scale_add`] then [`relu`] in one pass.
    pub fn scale_add_relu(y: &mut [f32], x: &[f32], a: f32, b: f32) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (x * a + b).max(0.0);
        }
    }
}

multiversion! {
    /// The portable form of [`masked_grad_sums`].
    fn masked_grad_sums_portable(o: &mut [f32], dy: &[f32], y: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
        let blocks = o.chunks_mut(BLOCK).zip(dy.chunks(BLOCK)).zip(y.chunks(BLOCK)).zip(x.chunks(BLOCK));
        for (((ob, db), yb), xb) in blocks {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            let mut oi = ob.chunks_exact_mut(LANES);
            let mut di = db.chunks_exact(LANES);
            let mut yi = yb.chunks_exact(LANES);
            let mut xi = xb.chunks_exact(LANES);
            for (((o, d), yv), v) in (&mut oi).zip(&mut di).zip(&mut yi).zip(&mut xi) {
                let o: &mut [f32; LANES] = o.try_into().unwrap();
                let d: &[f32; LANES] = d.try_into().unwrap();
                let yv: &[f32; LANES] = yv.try_into().unwrap();
                let v: &[f32; LANES] = v.try_into().unwrap();
                for l in 0..LANES {
                    let dl = keep_if_positive(d[l], yv[l]);
                    o[l] = dl;
                    s[l] += dl;
                    q[l] += dl * (v[l] - m);
                }
            }
            let (orest, drest) = (oi.into_remainder(), di.remainder());
            let (yrest, xrest) = (yi.remainder(), xi.remainder());
            for (l, o) in orest.iter_mut().enumerate() {
                let dl = keep_if_positive(drest[l], yrest[l]);
                *o = dl;
                s[l] += dl;
                q[l] += dl * (xrest[l] - m);
            }
            fold_block(acc, &s, &q);
        }
    }
}

/// `o = dy` where `y > 0`, else 0 (the gradient through a ReLU with output
/// `y`), and adds `(o, o * (x - m))` into `acc` as [`grad_sums`] does.
pub fn masked_grad_sums(
    o: &mut [f32],
    dy: &[f32],
    y: &[f32],
    x: &[f32],
    m: f32,
    acc: &mut LaneSums,
) {
    #[cfg(target_arch = "x86_64")]
    if level() >= AVX2 {
        // SAFETY: the CPU has the level's features (checked at run time).
        return unsafe { vector_sums!(masked_grad_sums(o, dy, y, x, m, acc)) };
    }
    masked_grad_sums_portable(o, dy, y, x, m, acc)
}

multiversion! {
    /// `y = max((x * a + b) + r, 0)`: [`scale_add`] then [`add_relu`] in one pass.
    pub fn scale_add_res_relu(y: &mut [f32], x: &[f32], r: &[f32], a: f32, b: f32) {
        for ((y, &x), &r) in y.iter_mut().zip(x).zip(r) {
            *y = ((x * a + b) + r).max(0.0);
        }
    }
}

multiversion! {
    /// [`lin2`] with `d` zeroed where `x * sa + sb <= 0` (the ReLU mask).
    pub fn lin2_relu(o: &mut [f32], d: &[f32], x: &[f32], a: f32, b: f32, c: f32, mask: (f32, f32)) {
        let (sa, sb) = mask;
        for ((o, &d), &x) in o.iter_mut().zip(d).zip(x) {
            let d = keep_if_positive(d, x * sa + sb);
            *o = a * d + b * x + c;
        }
    }
}

multiversion! {
    /// `max(a + b, 0)`: [`add`] then [`relu`] in one pass.
    pub fn add_relu(o: &mut [f32], a: &[f32], b: &[f32]) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = (a + b).max(0.0);
        }
    }
}

multiversion! {
    /// `y = x * a + b`.
    pub fn scale_add(y: &mut [f32], x: &[f32], a: f32, b: f32) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * a + b;
        }
    }
}

multiversion! {
    /// `o = a * d + b * x + c`.
    pub fn lin2(o: &mut [f32], d: &[f32], x: &[f32], a: f32, b: f32, c: f32) {
        for ((o, &d), &x) in o.iter_mut().zip(d).zip(x) {
            *o = a * d + b * x + c;
        }
    }
}

multiversion! {
    pub fn add(o: &mut [f32], a: &[f32], b: &[f32]) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = a + b;
        }
    }
}

multiversion! {
    pub fn sub(o: &mut [f32], a: &[f32], b: &[f32]) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = a - b;
        }
    }
}

multiversion! {
    pub fn mul(o: &mut [f32], a: &[f32], b: &[f32]) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = a * b;
        }
    }
}

multiversion! {
    /// `max(x, 0)`, with NaN mapped to 0 as `f32::max` does.
    pub fn relu(o: &mut [f32], x: &[f32]) {
        for (o, &x) in o.iter_mut().zip(x) {
            *o = x.max(0.0);
        }
    }
}

multiversion! {
    /// `d` where `y > 0`, else 0.
    pub fn relu_backward(o: &mut [f32], y: &[f32], d: &[f32]) {
        for ((o, &y), &d) in o.iter_mut().zip(y).zip(d) {
            *o = if y > 0.0 { d } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_and_never_above_the_cpu() {
        let cpu = detected_level();
        for level in [PORTABLE, AVX2, AVX512] {
            let parsed = parse_level(level_name(level));
            if level <= cpu {
                assert_eq!(parsed, Ok(level));
            } else {
                let err = parsed.unwrap_err();
                assert!(err.contains("more than this CPU has"), "{err}");
            }
        }
        assert_eq!(parse_level(" AVX2 ").ok(), parse_level("avx2").ok());
        let err = parse_level("sse4").unwrap_err();
        assert!(err.contains("expected avx512, avx2 or portable"), "{err}");
    }

    #[test]
    fn sums_match_f64_reference() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() + 3.0).collect();
        let mut acc = [[0f64; LANES]; 2];
        shifted_sums(&x, 3.0, &mut acc);
        let [s, q] = lane_total(&acc);
        let rs: f64 = x.iter().map(|&v| (v - 3.0) as f64).sum();
        let rq: f64 = x.iter().map(|&v| ((v - 3.0) as f64).powi(2)).sum();
        assert!(
            (s - rs).abs() < 1e-4 && (q - rq).abs() < 1e-4,
            "{s} {rs} {q} {rq}"
        );
        let mut acc = [[0f64; LANES]; 2];
        grad_sums(&x, &x, 3.0, &mut acc);
        let [a, b] = lane_total(&acc);
        let ra: f64 = x.iter().map(|&v| v as f64).sum();
        let rb: f64 = x.iter().map(|&v| v as f64 * (v - 3.0) as f64).sum();
        assert!(
            (a - ra).abs() < 1e-3 && (b - rb).abs() < 1e-3,
            "{a} {ra} {b} {rb}"
        );
        for n in [0, 1, 15, 16, 17, 1000] {
            let want = (0..16).fold(0f32, |a, l| {
                a + x[..n].iter().skip(l).step_by(16).fold(0f32, |s, &v| s + v)
            });
            assert_eq!(lane_sum(&x[..n]), want, "{n}");
        }
        let mut o = vec![0f32; x.len()];
        relu(&mut o, &[-1.0, 2.0, f32::NAN]);
        assert_eq!(&o[..3], &[0.0, 2.0, 0.0]);
    }

    /// The statistics sums' order written out element by element: element
    /// `i` adds its two terms (given by `term`) into f32 lane `i % 16`, and
    /// every [`BLOCK`] elements the lanes fold into the f64 lanes of `acc`.
    fn scalar_sums(n: usize, acc: &mut LaneSums, mut term: impl FnMut(usize) -> (f32, f32)) {
        let mut start = 0;
        while start < n {
            let (mut s, mut q) = ([0f32; LANES], [0f32; LANES]);
            for i in start..(start + BLOCK).min(n) {
                let (a, b) = term(i);
                s[i % LANES] += a;
                q[i % LANES] += b;
            }
            for l in 0..LANES {
                acc[0][l] += s[l] as f64;
                acc[1][l] += q[l] as f64;
            }
            start += BLOCK;
        }
    }

    /// The dispatched statistics sums (at the level `MACER_SIMD` allows) and their
    /// portable forms against [`scalar_sums`], bit for bit: whole and
    /// partial blocks and vectors, negative, zero and masked-out values.
    #[test]
    fn statistics_sums_match_a_scalar_reference_bit_for_bit() {
        let wave = |n: usize, f: f32| -> Vec<f32> {
            (0..n).map(|i| (i as f32 * f).sin() * 3.0 + 0.25).collect()
        };
        let bits = |a: &LaneSums| a.map(|l| l.map(f64::to_bits));
        let fresh = || [[0.5f64; LANES]; 2];
        let keep = |d: f32, y: f32| if y > 0.0 { d } else { 0.0 };
        for n in [0, 1, 15, 16, 17, 255, 256, 257, 700, 1024] {
            let (x, y, dy) = (wave(n, 0.37), wave(n, 0.91), wave(n, 1.3));

            let mut want = fresh();
            scalar_sums(n, &mut want, |i| {
                let d = x[i] - 0.7;
                (d, d * d)
            });
            let (mut a, mut b) = (fresh(), fresh());
            shifted_sums(&x, 0.7, &mut a);
            shifted_sums_portable(&x, 0.7, &mut b);
            assert_eq!(bits(&a), bits(&want), "shifted_sums {n}");
            assert_eq!(bits(&b), bits(&want), "shifted_sums_portable {n}");

            let mut want = fresh();
            scalar_sums(n, &mut want, |i| (dy[i], dy[i] * (x[i] - 0.3)));
            let (mut a, mut b) = (fresh(), fresh());
            grad_sums(&dy, &x, 0.3, &mut a);
            grad_sums_portable(&dy, &x, 0.3, &mut b);
            assert_eq!(bits(&a), bits(&want), "grad_sums {n}");
            assert_eq!(bits(&b), bits(&want), "grad_sums_portable {n}");

            let mut want = fresh();
            scalar_sums(n, &mut want, |i| {
                let d = keep(dy[i], x[i] * 1.5 + -0.2);
                (d, d * (x[i] - 0.3))
            });
            let (mut a, mut b) = (fresh(), fresh());
            grad_sums_relu(&dy, &x, 0.3, (1.5, -0.2), &mut a);
            grad_sums_relu_portable(&dy, &x, 0.3, (1.5, -0.2), &mut b);
            assert_eq!(bits(&a), bits(&want), "grad_sums_relu {n}");
            assert_eq!(bits(&b), bits(&want), "grad_sums_relu_portable {n}");

            // The masked gradient itself, and its sums.
            let masked: Vec<f32> = (0..n).map(|i| keep(dy[i], y[i])).collect();
            assert!(n < 2 || masked.contains(&0.0) && masked.iter().any(|&v| v != 0.0));
            let mut want = fresh();
            scalar_sums(n, &mut want, |i| (masked[i], masked[i] * (x[i] - 0.3)));
            let (mut a, mut b) = (fresh(), fresh());
            let (mut oa, mut ob) = (vec![9f32; n], vec![9f32; n]);
            masked_grad_sums(&mut oa, &dy, &y, &x, 0.3, &mut a);
            masked_grad_sums_portable(&mut ob, &dy, &y, &x, 0.3, &mut b);
            assert_eq!(
                (bits(&a), &oa),
                (bits(&want), &masked),
                "masked_grad_sums {n}"
            );
            assert_eq!((bits(&b), &ob), (bits(&want), &masked), "portable {n}");
            let (mut a, mut b) = (fresh(), fresh());
            let (mut da, mut db) = (dy.clone(), dy.clone());
            masked_grad_sums_in_place(&mut da, &y, &x, 0.3, &mut a);
            masked_grad_sums_in_place_portable(&mut db, &y, &x, 0.3, &mut b);
            assert_eq!((bits(&a), &da), (bits(&want), &masked), "in place {n}");
            assert_eq!(
                (bits(&b), &db),
                (bits(&want), &masked),
                "in place, portable {n}"
            );
        }
    }

    #[test]
    fn fused_residual_matches_separate_passes() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let r: Vec<f32> = (0..100).map(|i| (i as f32 * 0.91).cos()).collect();
        let (mut bn, mut want, mut got) = (vec![0f32; 100], vec![0f32; 100], vec![0f32; 100]);
        scale_add(&mut bn, &x, 1.7, -0.3);
        add_relu(&mut want, &bn, &r);
        scale_add_res_relu(&mut got, &x, &r, 1.7, -0.3);
        assert_eq!(want, got);
        assert!(got.contains(&0.0) && got.iter().any(|&v| v > 0.0));
    }

    #[test]
    fn add_relu_is_add_then_relu() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..100).map(|i| (i as f32 * 0.91).cos()).collect();
        let (mut sum, mut want, mut got) = (vec![0f32; 100], vec![0f32; 100], vec![0f32; 100]);
        add(&mut sum, &a, &b);
        relu(&mut want, &sum);
        add_relu(&mut got, &a, &b);
        assert_eq!(want, got);
        add_relu(&mut got[..3], &[1.0, -1.0, f32::NAN], &[0.5, 0.5, 1.0]);
        assert_eq!(&got[..3], &[1.5, 0.0, 0.0]);
    }
}
