//! Errors that cross the FFI boundary as messages.

use std::fmt;

/// Everything an op or a boundary call can refuse.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The handle was never issued or was already freed.
    BadHandle(u32),
    /// No op has this name.
    UnknownOp(String),
    /// An input has the wrong shape for the op.
    Shape { op: &'static str, msg: String },
    /// An input has the wrong element type.
    DType {
        op: &'static str,
        input: usize,
        expected: &'static str,
        got: &'static str,
    },
    /// A parameter is missing or out of range.
    Param { op: &'static str, msg: String },
    /// Wrong number of inputs.
    Arity {
        op: &'static str,
        expected: String,
        got: usize,
    },
    /// A Rust panic caught at the boundary (a bug, reported instead of aborting).
    Panic(String),
    /// No such device, or the device failed (no adapter, lost device, out of memory).
    Device(String),
    /// Inputs of one op live on different devices.
    Devices { op: &'static str, msg: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadHandle(h) => {
                write!(f, "tensor handle {h} is not live (freed or never created)")
            }
            Error::UnknownOp(name) => write!(f, "unknown op '{name}'"),
            Error::Shape { op, msg } => write!(f, "{op}: shape mismatch: {msg}"),
            Error::DType {
                op,
                input,
                expected,
                got,
            } => {
                write!(f, "{op}: input {input} must be {expected}, got {got}")
            }
            Error::Param { op, msg } => write!(f, "{op}: {msg}"),
            Error::Arity { op, expected, got } => {
                write!(f, "{op}: expected {expected} inputs, got {got}")
            }
            Error::Panic(msg) => write!(f, "internal error (panic): {msg}"),
            Error::Device(msg) => write!(f, "device: {msg}"),
            Error::Devices { op, msg } => write!(f, "{op}: inputs on different devices: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for a shape error.
pub fn shape_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape {
        op,
        msg: msg.into(),
    })
}

/// Shorthand for a parameter error.
pub fn param_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Param {
        op,
        msg: msg.into(),
    })
}
