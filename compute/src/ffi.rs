//! The C ABI that Deno's `Deno.dlopen` table in `compute/ffi.ts` mirrors.
//!
//! Conventions: handles are `u32` (0 is never a tensor); calls return a
//! negative number or 0 on failure, and `cm_last_error` then gives the message.
//! Panics are caught here and reported as errors, so a bug never aborts Deno.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, Result};
use crate::ops::{self, Args};
use crate::pool;
use crate::registry::with_registry;
use crate::tensor::{CpuData, DType, Device, Storage, Tensor};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(e: &Error) {
    LAST_ERROR.with(|s| *s.borrow_mut() = e.to_string());
}

/// Runs `f`, turning errors and panics into `fail` plus a stored message.
fn guard<T>(fail: T, f: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(&e);
            fail
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            set_error(&Error::Panic(msg));
            fail
        }
    }
}

/// # Safety
/// `ptr` must be valid for `len` elements (or `len` is 0).
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Copies the last error message into `buf`; returns its full length in bytes.
///
/// # Safety
/// `buf` must be writable for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn cm_last_error(buf: *mut u8, cap: usize) -> usize {
    LAST_ERROR.with(|s| {
        let s = s.borrow();
        let n = s.len().min(cap);
        if n > 0 && !buf.is_null() {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf, n);
        }
        s.len()
    })
}

/// Creates a tensor from host bytes on `device` (0 cpu, 1 gpu). Returns its
/// handle, or 0.
///
/// # Safety
/// `data` must be readable for `nbytes`, `shape` for `ndim` u32s.
#[no_mangle]
pub unsafe extern "C" fn cm_upload(
    device: u32,
    dtype: u32,
    data: *const u8,
    nbytes: usize,
    shape: *const u32,
    ndim: u32,
) -> u32 {
    guard(0, || {
        let dims: Vec<usize> = slice(shape, ndim as usize)
            .iter()
            .map(|&d| d as usize)
            .collect();
        let numel: usize = dims.iter().product();
        let dtype = DType::from_code(dtype).ok_or(Error::Param {
            op: "upload",
            msg: format!("unknown dtype code {dtype}"),
        })?;
        if numel * 4 != nbytes {
            return Err(Error::Shape {
                op: "upload",
                msg: format!("shape {dims:?} needs {} bytes, got {nbytes}", numel * 4),
            });
        }
        let device = device_of(device)?;
        let bytes = slice(data, nbytes);
        if device == Device::Gpu {
            let data = crate::gpu::context()?.upload(dtype, bytes);
            return Ok(with_registry(|r| r.insert(Tensor::from_gpu(dims, data))));
        }
        let t = match dtype {
            DType::F32 => Tensor::from_f32(
                dims,
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            DType::I32 => Tensor::from_i32(
                dims,
                bytes
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        };
        Ok(with_registry(|r| r.insert(t)))
    })
}

fn device_of(code: u32) -> Result<Device> {
    Device::from_code(code).ok_or_else(|| Error::Param {
        op: "run",
        msg: format!("unknown device code {code}"),
    })
}

/// Copies a tensor's elements to `out`. Returns 0, or -1.
///
/// # Safety
/// `out` must be writable for `nbytes`.
#[no_mangle]
pub unsafe extern "C" fn cm_download(handle: u32, out: *mut u8, nbytes: usize) -> i32 {
    guard(-1, || {
        with_registry(|r| {
            let t = r.get(handle)?;
            if t.nbytes() != nbytes {
                return Err(Error::Shape {
                    op: "download",
                    msg: format!("tensor has {} bytes, buffer has {nbytes}", t.nbytes()),
                });
            }
            if nbytes == 0 {
                return Ok(0);
            }
            // Host storage is copied straight from its vector; device storage
            // comes back through one staging read.
            match &t.storage {
                Storage::Cpu(CpuData::F32(v)) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr() as *const u8, out, nbytes)
                }
                Storage::Cpu(CpuData::I32(v)) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr() as *const u8, out, nbytes)
                }
                Storage::Gpu(g) => {
                    std::ptr::copy_nonoverlapping(g.read_bytes()?.as_ptr(), out, nbytes)
                }
            }
            Ok(0)
        })
    })
}

/// What the caller needs to wrap a handle: `[dtype, device, ndim, dims...]`.
fn info_words(t: &Tensor) -> Vec<u32> {
    [t.dtype() as u32, t.device() as u32, t.shape.len() as u32]
        .into_iter()
        .chain(t.shape.iter().map(|&d| d as u32))
        .collect()
}

/// Frees a tensor. Returns 0, or -1 for a handle that is not live.
#[no_mangle]
pub extern "C" fn cm_free(handle: u32) -> i32 {
    guard(-1, || with_registry(|r| r.free(handle)).map(|_| 0))
}

/// Runs op `name` on `inputs` with numeric `params`; writes the output handles
/// to `outputs` (capacity `max_out`) and, one after another, each output's
/// `[dtype, device, ndim, dims...]` to `shapes` (capacity `shapes_cap` u32s), so the
/// caller needs no further call per output. `device` (0 cpu, 1 gpu) places the
/// outputs of ops without tensor inputs. Returns the number of outputs, or -1.
///
/// # Safety
/// Pointers must be valid for their stated lengths.
#[no_mangle]
pub unsafe extern "C" fn cm_run(
    name: *const u8,
    name_len: usize,
    inputs: *const u32,
    n_inputs: u32,
    params: *const f64,
    n_params: u32,
    device: u32,
    outputs: *mut u32,
    max_out: u32,
    shapes: *mut u32,
    shapes_cap: u32,
) -> i32 {
    guard(-1, || {
        let name = std::str::from_utf8(slice(name, name_len))
            .map_err(|_| Error::UnknownOp("<not utf-8>".into()))?;
        let handles = slice(inputs, n_inputs as usize);
        let params = slice(params, n_params as usize);
        let outs = run_op(name, handles, params, device_of(device)?)?;
        let infos: Vec<u32> = with_registry(|r| {
            outs.iter()
                .flat_map(|&h| info_words(r.get(h).expect("just registered")))
                .collect()
        });
        if outs.len() > max_out as usize || infos.len() > shapes_cap as usize {
            with_registry(|r| outs.iter().for_each(|&h| drop(r.free(h))));
            return Err(Error::Param {
                op: "run",
                msg: format!(
                    "{name} returns {} outputs with {} shape words; room for {max_out} and {shapes_cap}",
                    outs.len(),
                    infos.len()
                ),
            });
        }
        std::ptr::copy_nonoverlapping(outs.as_ptr(), outputs, outs.len());
        std::ptr::copy_nonoverlapping(infos.as_ptr(), shapes, infos.len());
        Ok(outs.len() as i32)
    })
}

/// Looks up the op, checks arity and aliasing, runs it on the thread pool and
/// registers its outputs.
pub fn run_op(name: &str, handles: &[u32], params: &[f64], device: Device) -> Result<Vec<u32>> {
    let def = ops::find(name)?;
    if handles.len() < def.min_in || handles.len() > def.max_in {
        let expected = if def.min_in == def.max_in {
            def.min_in.to_string()
        } else {
            format!("{} to {}", def.min_in, def.max_in)
        };
        return Err(Error::Arity {
            op: def.name,
            expected,
            got: handles.len(),
        });
    }
    let n_mut = def.muts.count(handles.len());
    let (mut_handles, in_handles) = handles.split_at(n_mut);
    // An input updated in place may appear only once (checked in one pass:
    // the optimizer passes a whole model's tensors at a time).
    if n_mut > 0 {
        let mut first_at = std::collections::HashMap::with_capacity(handles.len());
        for (j, &h) in handles.iter().enumerate() {
            if let Some(i) = first_at.insert(h, j).filter(|&i| i < n_mut) {
                return Err(Error::Param {
                    op: def.name,
                    msg: format!("input {i} is updated in place and must not be passed twice"),
                });
            }
        }
    }
    with_registry(|reg| {
        let mut muts = Vec::with_capacity(n_mut);
        for &h in mut_handles {
            match reg.take(h) {
                Ok(t) => muts.push(t),
                Err(e) => {
                    for (h, t) in mut_handles.iter().zip(muts) {
                        reg.put_back(*h, t);
                    }
                    return Err(e);
                }
            }
        }
        // A panicking op must not take its in-place inputs with it: they go
        // back to the registry before the panic goes on to the boundary.
        let mut panicked = None;
        let result = {
            let ins: Result<Vec<&Tensor>> = in_handles.iter().map(|&h| reg.get(h)).collect();
            ins.and_then(|ins| {
                let mut args = Args {
                    op: def.name,
                    muts: &mut muts,
                    ins: &ins,
                    params,
                    device,
                };
                match catch_unwind(AssertUnwindSafe(|| pool::install(|| (def.run)(&mut args)))) {
                    Ok(r) => r,
                    Err(payload) => {
                        panicked = Some(payload);
                        Ok(Vec::new())
                    }
                }
            })
        };
        for (h, t) in mut_handles.iter().zip(muts) {
            reg.put_back(*h, t);
        }
        if let Some(payload) = panicked {
            std::panic::resume_unwind(payload);
        }
        result.map(|outs| outs.into_iter().map(|t| reg.insert(t)).collect())
    })
}

/// Sets the worker thread count (0: one per core). Returns 0.
#[no_mangle]
pub extern "C" fn cm_set_threads(threads: u32) -> i32 {
    guard(-1, || {
        pool::set_threads(threads as usize);
        Ok(0)
    })
}

#[no_mangle]
pub extern "C" fn cm_threads() -> u32 {
    guard(0, || Ok(pool::threads() as u32))
}

/// Number of live tensors (the allocation counter tests read).
#[no_mangle]
pub extern "C" fn cm_live_tensors() -> u32 {
    with_registry(|r| r.live_count() as u32)
}

/// Bytes held by live tensors.
#[no_mangle]
pub extern "C" fn cm_live_bytes() -> f64 {
    with_registry(|r| r.live_bytes() as f64)
}

/// The SIMD level the CPU kernels run at ("avx512", "avx2", "portable");
/// returns its length, or -1 when `MACER_SIMD` asks for a level that does
/// not exist or that this CPU lacks (the message says which).
///
/// # Safety
/// `buf` must be writable for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn cm_simd_level(buf: *mut u8, cap: usize) -> i32 {
    guard(-1, || {
        crate::cpu::simd::requested_level()
            .map_err(|msg| crate::error::Error::Param { op: "cpu", msg })?;
        let level = crate::cpu::simd_level();
        let n = level.len().min(cap);
        std::ptr::copy_nonoverlapping(level.as_ptr(), buf, n);
        Ok(level.len() as i32)
    })
}

/// Sets the SIMD level of the CPU kernels by name (as `MACER_SIMD` takes
/// it); 0, or -1 for a level that does not exist or that this CPU lacks.
///
/// # Safety
/// `name` must be readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cm_set_simd(name: *const u8, len: usize) -> i32 {
    guard(-1, || {
        let name = std::str::from_utf8(std::slice::from_raw_parts(name, len)).map_err(|_| {
            crate::error::Error::Param {
                op: "cpu",
                msg: "SIMD level: not UTF-8".into(),
            }
        })?;
        crate::cpu::simd::set_level(name)
            .map_err(|msg| crate::error::Error::Param { op: "cpu", msg })?;
        Ok(0)
    })
}

/// The devices as JSON: `[{"kind": "cpu", "simd", "simd_cpu", "simd_gemm",
/// "threads"}, {"kind": "gpu", "name", "backend", "device_type", "driver"}...]`;
/// returns its length.
///
/// # Safety
/// `buf` must be writable for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn cm_devices(buf: *mut u8, cap: usize) -> usize {
    let json = guard(String::from("[]"), || Ok(devices_json()));
    let n = json.len().min(cap);
    if n > 0 && !buf.is_null() {
        std::ptr::copy_nonoverlapping(json.as_ptr(), buf, n);
    }
    json.len()
}

fn devices_json() -> String {
    let quote = |s: &str| {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let level = |l| quote(crate::cpu::simd::level_name(l));
    let mut items = vec![format!(
        "{{\"kind\":\"cpu\",\"simd\":{},\"simd_cpu\":{},\"simd_gemm\":{},\"threads\":{}}}",
        level(crate::cpu::simd::level()),
        level(crate::cpu::simd::detected_level()),
        level(crate::cpu::gemm::crate_level()),
        pool::threads()
    )];
    for a in crate::gpu::adapters() {
        items.push(format!(
            "{{\"kind\":\"gpu\",\"name\":{},\"backend\":{},\"device_type\":{},\"driver\":{}}}",
            quote(&a.name),
            quote(&a.backend),
            quote(&a.device_type),
            quote(&a.driver)
        ));
    }
    format!("[{}]", items.join(","))
}

/// Opens the GPU context (the best adapter, software ones included) and
/// writes its adapter's name to `buf`; returns the name's length, or -1 with
/// the reason in `cm_last_error` (no adapter, device refused).
///
/// # Safety
/// `buf` must be writable for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn cm_gpu_open(buf: *mut u8, cap: usize) -> i64 {
    guard(-1, || {
        let gpu = crate::gpu::context()?;
        let name = &gpu.adapter.name;
        let n = name.len().min(cap);
        if n > 0 && !buf.is_null() {
            std::ptr::copy_nonoverlapping(name.as_ptr(), buf, n);
        }
        Ok(name.len() as i64)
    })
}

/// Waits for the GPU's queued work (for timing). Returns 0, or -1.
#[no_mangle]
pub extern "C" fn cm_sync() -> i32 {
    guard(-1, || {
        if let Some(gpu) = crate::gpu::try_context() {
            gpu.sync()?;
        }
        Ok(0)
    })
}

/// Bytes of device memory the GPU context holds (pooled or in use).
#[no_mangle]
pub extern "C" fn cm_gpu_bytes() -> f64 {
    crate::gpu::allocated_bytes() as f64
}
