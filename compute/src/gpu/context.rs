//! The adapter, device and queue; compiled pipelines; the open encoder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::pool::{BufferPool, GpuData};
use super::MAX_PASSES;
use crate::error::{Error, Result};
use crate::tensor::DType;

/// A WGSL kernel: a name for the pipeline cache, its source and entry point.
/// Bindings are `@group(0) @binding(0..n)` in the order they are passed, the
/// parameter words last (`var<storage, read>`).
#[derive(Clone, Copy)]
pub struct Kernel {
    pub name: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
}

/// What `deno task devices` shows of an adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> AdapterSummary {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: match info.device_type {
                wgpu::DeviceType::DiscreteGpu => "discrete",
                wgpu::DeviceType::IntegratedGpu => "integrated",
                wgpu::DeviceType::VirtualGpu => "virtual",
                wgpu::DeviceType::Cpu => "cpu",
                wgpu::DeviceType::Other => "other",
            }
            .into(),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
        }
    }

    /// A software rasteriser (Mesa's lavapipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        self.device_type == "cpu"
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc)
}

/// Every adapter the platform offers, best first.
pub fn adapters() -> Vec<AdapterSummary> {
    let mut all: Vec<wgpu::Adapter> =
        pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY));
    all.sort_by_key(|a| rank(&a.get_info()));
    all.iter().map(|a| AdapterSummary::of(&a.get_info())).collect()
}

/// Discrete before integrated before virtual before software.
fn rank(info: &wgpu::AdapterInfo) -> u8 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Work recorded but not yet submitted.
struct Recording {
    encoder: wgpu::CommandEncoder,
    passes: usize,
    /// Parameter words of this submission's passes, 256-byte slots.
    params: Vec<u32>,
    /// Buffers released while this recording may still use them.
    released: Vec<(u64, wgpu::Buffer)>,
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pipelines: Mutex<HashMap<&'static str, Arc<wgpu::ComputePipeline>>>,
    pub(super) pool: Mutex<BufferPool>,
    recording: Mutex<Option<Recording>>,
    /// One parameter buffer per submission slot, grown on demand.
    params: Mutex<Option<wgpu::Buffer>>,
}

/// Bytes of one parameter slot (the storage offset alignment every adapter accepts).
const PARAM_SLOT: usize = 256;

static CONTEXT: OnceLock<std::result::Result<Arc<Gpu>, String>> = OnceLock::new();

/// The process's GPU context, created on first call: the best adapter,
/// software ones included (an explicit `gpu` request may use Mesa's lavapipe).
/// `MACER_GPU_ADAPTER` picks the first adapter whose name contains it.
pub fn context() -> Result<Arc<Gpu>> {
    CONTEXT
        .get_or_init(|| Gpu::open().map(Arc::new))
        .clone()
        .map_err(Error::Device)
}

/// The context if one was already created (a buffer's drop must not create one).
pub fn try_context() -> Option<Arc<Gpu>> {
    CONTEXT.get().and_then(|c| c.as_ref().ok().cloned())
}

impl Gpu {
    fn open() -> std::result::Result<Gpu, String> {
        let mut all: Vec<wgpu::Adapter> =
            pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY));
        all.sort_by_key(|a| rank(&a.get_info()));
        if let Ok(wanted) = std::env::var("MACER_GPU_ADAPTER") {
            all.retain(|a| a.get_info().name.contains(&wanted));
            if all.is_empty() {
                return Err(format!(
                    "no GPU adapter's name contains MACER_GPU_ADAPTER={wanted:?} (see `deno task devices`)"
                ));
            }
        }
        let adapter = all.into_iter().next().ok_or_else(|| {
            "no GPU adapter found: looked for Vulkan, Metal and DirectX 12 adapters \
             (on Linux without a GPU, Mesa's lavapipe from the mesa-vulkan-drivers package provides one)"
                .to_string()
        })?;
        let summary = AdapterSummary::of(&adapter.get_info());
        // The adapter's own limits: storage bindings and buffer sizes beyond
        // WebGPU's defaults where the hardware has them.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("macer"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| format!("cannot open a device on adapter {}: {e}", summary.name))?;
        Ok(Gpu {
            device,
            queue,
            adapter: summary,
            limits,
            pipelines: Mutex::new(HashMap::new()),
            pool: Mutex::new(BufferPool::default()),
            recording: Mutex::new(None),
            params: Mutex::new(None),
        })
    }

    fn pipeline(&self, k: &Kernel) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(k.name)
            .or_insert_with(|| {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.name),
                        source: wgpu::ShaderSource::Wgsl(k.source.into()),
                    });
                Arc::new(
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(k.name),
                            layout: None,
                            module: &module,
                            entry_point: Some(k.entry),
                            compilation_options: Default::default(),
                            cache: None,
                        }),
                )
            })
            .clone()
    }

    /// A new buffer of `len` elements, contents undefined.
    pub fn alloc(self: &Arc<Self>, dtype: DType, len: usize) -> GpuData {
        GpuData::new(self, dtype, len)
    }

    /// A new buffer holding `bytes` (4 bytes an element).
    pub fn upload(self: &Arc<Self>, dtype: DType, bytes: &[u8]) -> GpuData {
        let data = self.alloc(dtype, bytes.len() / 4);
        if !bytes.is_empty() {
            // The write lands before the next submission. No recorded pass
            // can use this buffer yet: a buffer released during a recording
            // joins the pool only when that recording is submitted.
            self.queue.write_buffer(data.buffer(), 0, bytes);
        }
        data
    }

    /// Records one dispatch of `kernel` over `buffers` (bindings 0..n) and
    /// `params` (binding n), with `groups` workgroups.
    pub fn dispatch(&self, kernel: &Kernel, buffers: &[&GpuData], params: &[u32], groups: [u32; 3]) {
        let pipeline = self.pipeline(kernel);
        let mut guard = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|r| r.passes >= super::MAX_PASSES) {
            let full = guard.take().expect("recording");
            self.submit(full);
        }
        let rec = guard.get_or_insert_with(|| Recording {
            encoder: self.device.create_command_encoder(&Default::default()),
            passes: 0,
            params: Vec::new(),
            released: Vec::new(),
        });
        let slot = rec.passes;
        rec.params.resize((slot + 1) * PARAM_SLOT / 4, 0);
        rec.params[slot * PARAM_SLOT / 4..][..params.len()].copy_from_slice(params);
        rec.passes += 1;
        let param_buffer = self.param_buffer(MAX_PASSES * PARAM_SLOT);
        let mut entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.buffer().as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: buffers.len() as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &param_buffer,
                offset: (slot * PARAM_SLOT) as u64,
                size: std::num::NonZeroU64::new(PARAM_SLOT as u64),
            }),
        });
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = rec.encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(kernel.name),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    /// The shared parameter buffer (one per context: a submission writes it
    /// just before it is submitted, and submissions run in order).
    fn param_buffer(&self, size: usize) -> wgpu::Buffer {
        let mut guard = self.params.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .get_or_insert_with(|| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params"),
                    size: size as u64,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .clone()
    }

    /// Records a copy between buffers (after the work recorded so far).
    pub fn copy(&self, src: &GpuData, dst: &GpuData, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut guard = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        let rec = guard.get_or_insert_with(|| Recording {
            encoder: self.device.create_command_encoder(&Default::default()),
            passes: 0,
            params: Vec::new(),
            released: Vec::new(),
        });
        rec.encoder
            .copy_buffer_to_buffer(src.buffer(), 0, dst.buffer(), 0, bytes as u64);
    }

    /// Hands a released buffer to the pool once recorded work no longer needs it.
    pub(super) fn release(&self, size: u64, buffer: wgpu::Buffer) {
        let mut guard = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(rec) => rec.released.push((size, buffer)),
            None => self
                .pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .put(size, buffer),
        }
    }

    /// Submits the recorded work, if any.
    pub fn flush(&self) {
        let rec = self
            .recording
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rec) = rec {
            self.submit(rec);
        }
    }

    fn submit(&self, rec: Recording) {
        if !rec.params.is_empty() {
            let buffer = self.param_buffer(MAX_PASSES * PARAM_SLOT);
            self.queue
                .write_buffer(&buffer, 0, bytemuck_words(&rec.params));
        }
        self.queue.submit([rec.encoder.finish()]);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        for (size, buffer) in rec.released {
            pool.put(size, buffer);
        }
    }

    /// Waits until every submitted command has finished.
    pub fn sync(&self) -> Result<()> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(format!("waiting for the GPU: {e}")))
    }

    /// Copies `bytes` bytes of `src` to the host (submits and waits).
    pub(super) fn read(&self, src: &wgpu::Buffer, bytes: usize) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read"),
            size: bytes as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut guard = self.recording.lock().unwrap_or_else(|p| p.into_inner());
            let rec = guard.get_or_insert_with(|| Recording {
                encoder: self.device.create_command_encoder(&Default::default()),
                passes: 0,
                params: Vec::new(),
                released: Vec::new(),
            });
            rec.encoder
                .copy_buffer_to_buffer(src, 0, &staging, 0, bytes as u64);
        }
        self.flush();
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.sync()?;
        rx.recv()
            .map_err(|_| Error::Device("the GPU read never completed".into()))?
            .map_err(|e| Error::Device(format!("reading a GPU buffer: {e}")))?;
        let out = slice
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("reading a GPU buffer: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }
}

fn bytemuck_words(words: &[u32]) -> &[u8] {
    // SAFETY: u32 has no padding and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 4) }
}
