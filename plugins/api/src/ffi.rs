//! The C ABI for plugins built as shared libraries.
//!
//! Shape (after polars' own plugin handshake): a frozen version function is read first, then the
//! compiler version, and only then the vtable. Only C-safe data crosses: numbers, byte strings,
//! and parameters serialized as a TOML document. Every stage kind can be served:
//! - Columns of `f64` carry the stages whose methods are element-wise — [`StageKind::Ratio`],
//!   [`StageKind::ConfidenceInterval`] and [`StageKind::Significance`] (`compute`).
//! - The structured stages (attribution, derivation, exclusions, standardisation, factors,
//!   summary, data quality, period comparison, waiting times, setting share, disclosure)
//!   exchange their plain data types encoded as bytes through one generic entry, `call`
//!   ([`call`]).
//!
//! Every exported symbol carries the plugin's own prefix (`<prefix>_strata_api_version`, ...), so the
//! same crate links statically beside others without duplicate symbols. A library file
//! `lib<prefix>.so` exports the prefix `<prefix>`.
//!
//! Panics never cross: the plugin side catches them and returns [`STATUS_PANIC`] with the message.
//! Buffers are freed by the side that allocated them (`free_output`, `free_bytes`, `free_error`).

// The entry points below take raw pointers by design: they are the C ABI, called only by the
// engine's loader under the contract documented on each type.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub mod call;

pub use call::FfiBytes;

use crate::{
    Comparison, Configured, Limits, MethodError, Params, PluginDescriptor, RatioValue,
    SignificanceResult, StageKind,
};

pub const STATUS_OK: i32 = 0;
pub const STATUS_ERROR: i32 = 1;
pub const STATUS_PANIC: i32 = 2;

/// Suffixes of the exported symbols; the full name is `<prefix><suffix>`.
pub const SYMBOL_API_VERSION: &str = "_strata_api_version";
pub const SYMBOL_RUSTC_VERSION: &str = "_strata_rustc_version";
pub const SYMBOL_VTABLE: &str = "_strata_vtable";

/// Borrowed UTF-8 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FfiStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl FfiStr {
    pub fn of(s: &str) -> Self {
        FfiStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    pub fn of_bytes(bytes: &[u8]) -> Self {
        FfiStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    pub const EMPTY: FfiStr = FfiStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// # Safety
    /// `ptr` must point at `len` readable bytes for the returned lifetime (or be null with len 0).
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.ptr.is_null() || self.len == 0 {
            return String::new();
        }
        // SAFETY: the caller guarantees ptr/len describe live bytes.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A named column of numbers.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FfiColumn {
    pub name: FfiStr,
    pub data: *const f64,
    pub len: usize,
}

#[repr(C)]
pub struct FfiPluginInfo {
    pub id: FfiStr,
    pub stage: FfiStr,
    pub version: FfiStr,
    pub description: FfiStr,
}

/// Result of `compute`, owned by the plugin until `free_output`.
#[repr(C)]
pub struct FfiOutput {
    pub columns: *const FfiColumn,
    pub n_columns: usize,
    /// One per row; an empty string is "no note".
    pub notes: *const FfiStr,
    pub n_notes: usize,
    pub method_name: FfiStr,
    pub owner: *mut c_void,
}

impl FfiOutput {
    pub const EMPTY: FfiOutput = FfiOutput {
        columns: std::ptr::null(),
        n_columns: 0,
        notes: std::ptr::null(),
        n_notes: 0,
        method_name: FfiStr::EMPTY,
        owner: std::ptr::null_mut(),
    };
}

/// An error message, owned by the plugin until `free_error`.
#[repr(C)]
pub struct FfiError {
    pub message: FfiStr,
    /// Dotted parameter key for a parameter error, empty otherwise.
    pub key: FfiStr,
    pub owner: *mut c_void,
}

impl FfiError {
    pub const EMPTY: FfiError = FfiError {
        message: FfiStr::EMPTY,
        key: FfiStr::EMPTY,
        owner: std::ptr::null_mut(),
    };
}

#[repr(C)]
pub struct FfiVTable {
    pub info: extern "C" fn() -> FfiPluginInfo,
    /// Parses params (a TOML document) and returns an opaque handle.
    pub configure:
        extern "C" fn(params: FfiStr, handle: *mut *mut c_void, error: *mut FfiError) -> i32,
    pub compute: extern "C" fn(
        handle: *mut c_void,
        inputs: *const FfiColumn,
        n_inputs: usize,
        output: *mut FfiOutput,
        error: *mut FfiError,
    ) -> i32,
    pub free_output: extern "C" fn(output: *mut FfiOutput),
    /// The structured stages' entry: `input` is an encoded [`call::Request`]; on success
    /// `output` holds an encoded [`call::Response`] until `free_bytes`.
    pub call: extern "C" fn(
        handle: *mut c_void,
        input: FfiStr,
        output: *mut FfiBytes,
        error: *mut FfiError,
    ) -> i32,
    pub free_bytes: extern "C" fn(output: *mut FfiBytes),
    pub free_error: extern "C" fn(error: *mut FfiError),
    pub drop_handle: extern "C" fn(handle: *mut c_void),
}

// ---------------------------------------------------------------------------------------------
// Column layouts per stage: the names both sides agree on.

pub const RATIO_INPUTS: [&str; 3] = ["base_rate", "comparison_rate", "rate_per"];
pub const CI_INPUTS: [&str; 3] = ["observed", "expected", "scale"];
pub const SIGNIFICANCE_INPUTS: [&str; 7] = [
    "base_rate",
    "comparison_rate",
    "base_observed",
    "comparison_observed",
    "base_expected",
    "comparison_expected",
    "rate_per",
];

/// The one per-population unit of a call's `rate_per` column (the host repeats it on every row);
/// any value for a call of no rows, which computes nothing.
fn unit_of(rate_per: &[f64]) -> Result<f64, MethodError> {
    match rate_per.split_first() {
        None => Ok(crate::DEFAULT_RATE_PER),
        Some((&first, rest)) if rest.iter().all(|&v| v == first) => Ok(first),
        Some(_) => Err(MethodError::new(
            "input column `rate_per` holds more than one value",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Plugin side: what `export_plugin!` expands to call.

/// Exports a plugin descriptor over the C ABI under a symbol prefix, whatever its stage kind:
/// the author writes the stage trait's impl and this one line.
///
/// ```ignore
/// strata_api::export_plugin!(strata_ratio_difference, crate::DESCRIPTOR);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($prefix:ident, $descriptor:expr) => {
        const _: () = {
            #[unsafe(export_name = concat!(stringify!($prefix), "_strata_api_version"))]
            pub extern "C" fn strata_api_version() -> u32 {
                $crate::API_VERSION
            }

            #[unsafe(export_name = concat!(stringify!($prefix), "_strata_rustc_version"))]
            pub extern "C" fn strata_rustc_version() -> $crate::ffi::FfiStr {
                $crate::ffi::FfiStr::of($crate::RUSTC_VERSION)
            }

            extern "C" fn info() -> $crate::ffi::FfiPluginInfo {
                $crate::ffi::plugin_info(&$descriptor)
            }

            extern "C" fn configure(
                params: $crate::ffi::FfiStr,
                handle: *mut *mut ::std::ffi::c_void,
                error: *mut $crate::ffi::FfiError,
            ) -> i32 {
                $crate::ffi::plugin_configure(&$descriptor, params, handle, error)
            }

            static VTABLE: $crate::ffi::FfiVTable = $crate::ffi::FfiVTable {
                info,
                configure,
                compute: $crate::ffi::plugin_compute,
                free_output: $crate::ffi::plugin_free_output,
                call: $crate::ffi::call::plugin_call,
                free_bytes: $crate::ffi::call::plugin_free_bytes,
                free_error: $crate::ffi::plugin_free_error,
                drop_handle: $crate::ffi::plugin_drop_handle,
            };

            #[unsafe(export_name = concat!(stringify!($prefix), "_strata_vtable"))]
            pub extern "C" fn strata_vtable() -> *const $crate::ffi::FfiVTable {
                &VTABLE
            }
        };
    };
}

pub fn plugin_info(descriptor: &PluginDescriptor) -> FfiPluginInfo {
    FfiPluginInfo {
        id: FfiStr::of(descriptor.id),
        stage: FfiStr::of(descriptor.stage.key()),
        version: FfiStr::of(descriptor.version),
        description: FfiStr::of(descriptor.description),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

struct ErrorOwner {
    message: String,
    key: String,
}

fn write_error(error: *mut FfiError, message: String, key: Option<String>) {
    if error.is_null() {
        return;
    }
    let owner = Box::new(ErrorOwner {
        message,
        key: key.unwrap_or_default(),
    });
    let ffi = FfiError {
        message: FfiStr::of(&owner.message),
        key: FfiStr::of(&owner.key),
        owner: Box::into_raw(owner).cast(),
    };
    // SAFETY: the host passes a valid, writable FfiError.
    unsafe { error.write(ffi) };
}

pub fn plugin_configure(
    descriptor: &PluginDescriptor,
    params: FfiStr,
    handle: *mut *mut c_void,
    error: *mut FfiError,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes its own live params bytes.
        let text = unsafe { params.to_string_lossy() };
        let params = Params::from_toml_str(&text)?;
        (descriptor.configure)(&params)
    }));
    match result {
        Ok(Ok(configured)) => {
            if handle.is_null() {
                return STATUS_ERROR;
            }
            // SAFETY: the host passes a writable handle slot.
            unsafe { handle.write(Box::into_raw(Box::new(configured)).cast()) };
            STATUS_OK
        }
        Ok(Err(e)) => {
            write_error(error, e.message, e.key);
            STATUS_ERROR
        }
        Err(payload) => {
            write_error(
                error,
                format!("plugin panicked: {}", panic_message(payload)),
                None,
            );
            STATUS_PANIC
        }
    }
}

/// Named output columns.
type Columns = Vec<(String, Vec<f64>)>;

struct OutputOwner {
    names: Vec<String>,
    data: Vec<Vec<f64>>,
    columns: Vec<FfiColumn>,
    notes_text: Vec<String>,
    notes: Vec<FfiStr>,
    method_name: String,
}

fn column<'a>(inputs: &'a [FfiColumn], name: &str) -> Result<&'a [f64], MethodError> {
    for c in inputs {
        // SAFETY: the host passes live names and data of the given lengths.
        let cname = unsafe { c.name.to_string_lossy() };
        if cname == name {
            if c.data.is_null() || c.len == 0 {
                return Ok(&[]);
            }
            return Ok(unsafe { std::slice::from_raw_parts(c.data, c.len) });
        }
    }
    Err(MethodError::new(format!("input column `{name}` missing")))
}

fn compute_configured(
    configured: &Configured,
    inputs: &[FfiColumn],
) -> Result<(String, Columns, Vec<String>), MethodError> {
    match configured {
        Configured::Ratio(m) => {
            let out = m.ratios(
                column(inputs, RATIO_INPUTS[0])?,
                column(inputs, RATIO_INPUTS[1])?,
                unit_of(column(inputs, RATIO_INPUTS[2])?)?,
            )?;
            let values = out.iter().map(|r| r.value.unwrap_or(f64::NAN)).collect();
            let notes = out
                .into_iter()
                .map(|r| r.note.unwrap_or_default())
                .collect();
            Ok((m.method_name(), vec![("ratio".into(), values)], notes))
        }
        Configured::ConfidenceInterval(m) => {
            let limits = m.limits(
                column(inputs, CI_INPUTS[0])?,
                column(inputs, CI_INPUTS[1])?,
                column(inputs, CI_INPUTS[2])?,
            )?;
            let mut cols = Vec::new();
            for l in limits {
                cols.push((format!("lower@{}", l.level), l.lower));
                cols.push((format!("upper@{}", l.level), l.upper));
            }
            Ok((m.method_name(), cols, Vec::new()))
        }
        Configured::Significance(m) => {
            let c: Vec<&[f64]> = SIGNIFICANCE_INPUTS
                .iter()
                .map(|n| column(inputs, n))
                .collect::<Result<_, _>>()?;
            let comparisons: Vec<Comparison> = (0..c[0].len())
                .map(|i| Comparison {
                    base_rate: c[0][i],
                    comparison_rate: c[1][i],
                    base_observed: c[2][i],
                    comparison_observed: c[3][i],
                    base_expected: c[4][i],
                    comparison_expected: c[5][i],
                    rate_per: c[6][i],
                })
                .collect();
            let out = m.test(&comparisons)?;
            let statistic = out.iter().map(|r| r.statistic).collect();
            let p = out.iter().map(|r| r.p_value).collect();
            let stars = out.into_iter().map(|r| r.stars).collect();
            Ok((
                m.method_name(),
                vec![("statistic".into(), statistic), ("p_value".into(), p)],
                stars,
            ))
        }
        other => Err(MethodError::new(format!(
            "stage `{}` crosses as a serialized call, not as columns",
            other.stage()
        ))),
    }
}

pub extern "C" fn plugin_compute(
    handle: *mut c_void,
    inputs: *const FfiColumn,
    n_inputs: usize,
    output: *mut FfiOutput,
    error: *mut FfiError,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if handle.is_null() || output.is_null() {
            return Err(MethodError::new("null handle or output"));
        }
        // SAFETY: handle came from plugin_configure; inputs from the host.
        let configured = unsafe { &*(handle as *const Configured) };
        let inputs = if inputs.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(inputs, n_inputs) }
        };
        compute_configured(configured, inputs)
    }));
    match result {
        Ok(Ok((method_name, cols, notes_text))) => {
            let mut owner = Box::new(OutputOwner {
                names: cols.iter().map(|(n, _)| n.clone()).collect(),
                data: cols.into_iter().map(|(_, d)| d).collect(),
                columns: Vec::new(),
                notes_text,
                notes: Vec::new(),
                method_name,
            });
            owner.columns = owner
                .names
                .iter()
                .zip(&owner.data)
                .map(|(n, d)| FfiColumn {
                    name: FfiStr::of(n),
                    data: d.as_ptr(),
                    len: d.len(),
                })
                .collect();
            owner.notes = owner.notes_text.iter().map(|s| FfiStr::of(s)).collect();
            let ffi = FfiOutput {
                columns: owner.columns.as_ptr(),
                n_columns: owner.columns.len(),
                notes: owner.notes.as_ptr(),
                n_notes: owner.notes.len(),
                method_name: FfiStr::of(&owner.method_name),
                owner: Box::into_raw(owner).cast(),
            };
            // SAFETY: checked non-null above; the host passes a writable output.
            unsafe { output.write(ffi) };
            STATUS_OK
        }
        Ok(Err(e)) => {
            write_error(error, e.message, None);
            STATUS_ERROR
        }
        Err(payload) => {
            write_error(
                error,
                format!("plugin panicked: {}", panic_message(payload)),
                None,
            );
            STATUS_PANIC
        }
    }
}

pub extern "C" fn plugin_free_output(output: *mut FfiOutput) {
    if output.is_null() {
        return;
    }
    // SAFETY: output was written by plugin_compute; owner is our Box.
    unsafe {
        let owner = (*output).owner;
        if !owner.is_null() {
            drop(Box::from_raw(owner.cast::<OutputOwner>()));
        }
        output.write(FfiOutput::EMPTY);
    }
}

pub extern "C" fn plugin_free_error(error: *mut FfiError) {
    if error.is_null() {
        return;
    }
    // SAFETY: error was written by write_error; owner is our Box.
    unsafe {
        let owner = (*error).owner;
        if !owner.is_null() {
            drop(Box::from_raw(owner.cast::<ErrorOwner>()));
        }
        error.write(FfiError::EMPTY);
    }
}

pub extern "C" fn plugin_drop_handle(handle: *mut c_void) {
    if !handle.is_null() {
        // SAFETY: handle came from plugin_configure.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            drop(Box::from_raw(handle.cast::<Configured>()));
        }));
    }
}

// ---------------------------------------------------------------------------------------------
// Host side: a loaded vtable behind the ordinary stage traits.

/// Keeps the shared library (or anything else the vtable lives in) loaded while a method is used.
pub type KeepAlive = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// Information a loaded plugin reports about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignInfo {
    pub id: String,
    pub stage: String,
    pub version: String,
    pub description: String,
}

/// # Safety
/// `vtable` must point at a live [`FfiVTable`] (kept alive by the caller's `KeepAlive`).
pub unsafe fn foreign_info(vtable: *const FfiVTable) -> ForeignInfo {
    // SAFETY: per the function contract.
    let info = unsafe { ((*vtable).info)() };
    unsafe {
        ForeignInfo {
            id: info.id.to_string_lossy(),
            stage: info.stage.to_string_lossy(),
            version: info.version.to_string_lossy(),
            description: info.description.to_string_lossy(),
        }
    }
}

struct ForeignMethod {
    vtable: *const FfiVTable,
    handle: *mut c_void,
    id: String,
    method_name: std::sync::OnceLock<String>,
    _keep_alive: KeepAlive,
}

// SAFETY: the plugin side's configured methods are `Send + Sync` (the stage traits require it) and
// the vtable is immutable static data.
unsafe impl Send for ForeignMethod {}
unsafe impl Sync for ForeignMethod {}

impl Drop for ForeignMethod {
    fn drop(&mut self) {
        // SAFETY: handle came from this vtable's configure.
        unsafe { ((*self.vtable).drop_handle)(self.handle) };
    }
}

/// Error from a foreign call: the message, and the parameter key if it was a parameter error.
fn take_error(vtable: *const FfiVTable, error: &mut FfiError) -> (String, Option<String>) {
    // SAFETY: the plugin wrote error (or left it EMPTY).
    let (message, key) = unsafe { (error.message.to_string_lossy(), error.key.to_string_lossy()) };
    unsafe { ((*vtable).free_error)(error) };
    (message, if key.is_empty() { None } else { Some(key) })
}

impl ForeignMethod {
    fn call(&self, inputs: &[(&str, &[f64])]) -> Result<(Columns, Vec<String>), MethodError> {
        let columns: Vec<FfiColumn> = inputs
            .iter()
            .map(|(n, d)| FfiColumn {
                name: FfiStr::of(n),
                data: d.as_ptr(),
                len: d.len(),
            })
            .collect();
        let mut output = FfiOutput::EMPTY;
        let mut error = FfiError::EMPTY;
        // SAFETY: vtable and handle are live; the buffers outlive the call.
        let status = unsafe {
            ((*self.vtable).compute)(
                self.handle,
                columns.as_ptr(),
                columns.len(),
                &mut output,
                &mut error,
            )
        };
        if status != STATUS_OK {
            let (message, _) = take_error(self.vtable, &mut error);
            return Err(MethodError::foreign(format!(
                "plugin `{}`: {message}",
                self.id
            )));
        }
        // Copy out, then let the plugin free its buffers.
        let mut cols = Vec::with_capacity(output.n_columns);
        let mut notes = Vec::with_capacity(output.n_notes);
        unsafe {
            if !output.columns.is_null() {
                for c in std::slice::from_raw_parts(output.columns, output.n_columns) {
                    let data = if c.data.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(c.data, c.len).to_vec()
                    };
                    cols.push((c.name.to_string_lossy(), data));
                }
            }
            if !output.notes.is_null() {
                for n in std::slice::from_raw_parts(output.notes, output.n_notes) {
                    notes.push(n.to_string_lossy());
                }
            }
            let name = output.method_name.to_string_lossy();
            let _ = self.method_name.set(name);
            ((*self.vtable).free_output)(&mut output);
        }
        Ok((cols, notes))
    }

    fn name(&self) -> String {
        self.method_name
            .get()
            .cloned()
            .unwrap_or_else(|| self.id.clone())
    }
}

/// The output column `name`, which must hold one value per row.
fn find(
    plugin: &str,
    cols: &[(String, Vec<f64>)],
    name: &str,
    rows: usize,
) -> Result<Vec<f64>, MethodError> {
    let (_, data) = cols.iter().find(|(n, _)| n == name).ok_or_else(|| {
        MethodError::foreign(format!(
            "plugin `{plugin}` returned no column `{name}` (it returned: {})",
            cols.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if data.len() != rows {
        return Err(MethodError::foreign(format!(
            "plugin `{plugin}` returned {} values in column `{name}` for {rows} rows",
            data.len()
        )));
    }
    Ok(data.clone())
}

/// A NaN (or infinity) where the inputs of the row called for a number.
fn not_a_number(plugin: &str, column: &str, row: usize, value: f64) -> MethodError {
    MethodError::foreign(format!(
        "plugin `{plugin}` returned {value} in column `{column}` at row {row}, whose inputs are \
         valid numbers"
    ))
}

impl crate::RatioMethod for ForeignMethod {
    fn method_name(&self) -> String {
        self.name()
    }
    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        let rows = base_rate.len();
        let unit = vec![rate_per; rows];
        let (cols, notes) = self.call(&[
            (RATIO_INPUTS[0], base_rate),
            (RATIO_INPUTS[1], comparison_rate),
            (RATIO_INPUTS[2], &unit),
        ])?;
        let values = find(&self.id, &cols, "ratio", rows)?;
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let note = notes.get(i).filter(|n| !n.is_empty()).cloned();
                // An undefined ratio of two rates is allowed, but it must say why.
                let rates_valid = base_rate[i].is_finite() && comparison_rate[i].is_finite();
                if rates_valid && !v.is_finite() && note.is_none() {
                    return Err(not_a_number(&self.id, "ratio", i, v));
                }
                Ok(RatioValue {
                    value: v.is_finite().then_some(v),
                    note,
                })
            })
            .collect()
    }
}

impl crate::ConfidenceIntervalMethod for ForeignMethod {
    fn method_name(&self) -> String {
        self.name()
    }
    fn limits(
        &self,
        observed: &[f64],
        expected: &[f64],
        scale: &[f64],
    ) -> Result<Vec<Limits>, MethodError> {
        let rows = observed.len();
        let (cols, _) = self.call(&[
            (CI_INPUTS[0], observed),
            (CI_INPUTS[1], expected),
            (CI_INPUTS[2], scale),
        ])?;
        let mut limits = Vec::new();
        for (text, level) in cols
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("lower@"))
            .filter_map(|level| level.parse::<f64>().ok().map(|l| (level.to_string(), l)))
        {
            let (lower_name, upper_name) = (format!("lower@{text}"), format!("upper@{text}"));
            let lower = find(&self.id, &cols, &lower_name, rows)?;
            let upper = find(&self.id, &cols, &upper_name, rows)?;
            // A count and a positive expected count always have limits.
            for i in 0..rows {
                let valid = observed[i].is_finite()
                    && observed[i] >= 0.0
                    && expected[i].is_finite()
                    && expected[i] > 0.0
                    && scale[i].is_finite();
                for (name, v) in [(&lower_name, lower[i]), (&upper_name, upper[i])] {
                    if valid && !v.is_finite() {
                        return Err(not_a_number(&self.id, name, i, v));
                    }
                }
            }
            limits.push(Limits {
                level,
                lower,
                upper,
            });
        }
        if rows > 0 && limits.is_empty() {
            return Err(MethodError::foreign(format!(
                "plugin `{}` returned no `lower@<level>` column",
                self.id
            )));
        }
        Ok(limits)
    }
}

impl crate::SignificanceMethod for ForeignMethod {
    fn method_name(&self) -> String {
        self.name()
    }
    fn test(&self, comparisons: &[Comparison]) -> Result<Vec<SignificanceResult>, MethodError> {
        let rows = comparisons.len();
        let cols: [Vec<f64>; 7] = [
            comparisons.iter().map(|c| c.base_rate).collect(),
            comparisons.iter().map(|c| c.comparison_rate).collect(),
            comparisons.iter().map(|c| c.base_observed).collect(),
            comparisons.iter().map(|c| c.comparison_observed).collect(),
            comparisons.iter().map(|c| c.base_expected).collect(),
            comparisons.iter().map(|c| c.comparison_expected).collect(),
            comparisons.iter().map(|c| c.rate_per).collect(),
        ];
        let inputs: Vec<(&str, &[f64])> = SIGNIFICANCE_INPUTS
            .iter()
            .zip(&cols)
            .map(|(n, d)| (*n, d.as_slice()))
            .collect();
        let (out, stars) = self.call(&inputs)?;
        let statistic = find(&self.id, &out, "statistic", rows)?;
        let p = find(&self.id, &out, "p_value", rows)?;
        (0..rows)
            .map(|i| {
                // A statistic has a p-value, and a p-value is a probability.
                if statistic[i].is_finite() && !(0.0..=1.0).contains(&p[i]) {
                    return Err(not_a_number(&self.id, "p_value", i, p[i]));
                }
                Ok(SignificanceResult {
                    statistic: statistic[i],
                    p_value: p[i],
                    stars: stars.get(i).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Configures a loaded plugin and wraps it in its stage trait.
///
/// # Safety
/// `vtable` must point at a live [`FfiVTable`] that `keep_alive` keeps loaded, and the library's
/// API and compiler versions must already have been checked.
pub unsafe fn configure_foreign(
    vtable: *const FfiVTable,
    keep_alive: KeepAlive,
    params: &Params,
) -> Result<Configured, crate::ParamError> {
    // SAFETY: per the function contract.
    let info = unsafe { foreign_info(vtable) };
    let text = params.to_toml_string();
    let mut handle: *mut c_void = std::ptr::null_mut();
    let mut error = FfiError::EMPTY;
    let status = unsafe { ((*vtable).configure)(FfiStr::of(&text), &mut handle, &mut error) };
    if status != STATUS_OK {
        let (message, key) = take_error(vtable, &mut error);
        return Err(crate::ParamError { key, message });
    }
    let method = ForeignMethod {
        vtable,
        handle,
        id: info.id.clone(),
        method_name: std::sync::OnceLock::new(),
        _keep_alive: keep_alive,
    };
    let Some(stage) = StageKind::from_key(&info.stage) else {
        return Err(crate::ParamError {
            key: None,
            message: format!(
                "plugin `{}` serves stage `{}`, which this strata does not know",
                info.id, info.stage
            ),
        });
    };
    let numeric: Option<&[&str]> = match stage {
        StageKind::Ratio => Some(&RATIO_INPUTS),
        StageKind::ConfidenceInterval => Some(&CI_INPUTS),
        StageKind::Significance => Some(&SIGNIFICANCE_INPUTS),
        _ => None,
    };
    if let Some(names) = numeric {
        // A zero-row call tells the method's name (the text output rows carry) before any data.
        let empty: Vec<(&str, &[f64])> = names.iter().map(|n| (*n, &[][..])).collect();
        let _ = method.call(&empty);
        return Ok(match stage {
            StageKind::Ratio => Configured::Ratio(Box::new(method)),
            StageKind::ConfidenceInterval => Configured::ConfidenceInterval(Box::new(method)),
            _ => Configured::Significance(Box::new(method)),
        });
    }
    configure_structured(stage, method)
}

/// A structured stage: asks the plugin to describe itself (name, and the fixed answers of
/// derivation and exclusions) so a broken plugin fails before any data is read.
fn configure_structured(
    stage: StageKind,
    method: ForeignMethod,
) -> Result<Configured, crate::ParamError> {
    let id = method.id.clone();
    let refuse = |message: String| crate::ParamError { key: None, message };
    let s = call::ForeignStructured::describe(method).map_err(|e| refuse(e.message))?;
    if stage == StageKind::Derivation && s.shape.is_none() {
        return Err(refuse(format!(
            "plugin `{id}` serves stage `derivation` but did not describe its shape"
        )));
    }
    if stage == StageKind::Exclusions && s.excluded.is_none() {
        return Err(refuse(format!(
            "plugin `{id}` serves stage `exclusions` but did not say which unknowns it excludes"
        )));
    }
    Ok(match stage {
        StageKind::Attribution => Configured::Attribution(Box::new(s)),
        StageKind::Derivation => Configured::Derivation(Box::new(s)),
        StageKind::Exclusions => Configured::Exclusions(Box::new(s)),
        StageKind::Standardisation => Configured::Standardisation(Box::new(s)),
        StageKind::Factors => Configured::Factors(Box::new(s)),
        StageKind::Summary => Configured::Summary(Box::new(s)),
        StageKind::Overdispersion => Configured::Overdispersion(Box::new(s)),
        StageKind::DataQuality => Configured::DataQuality(Box::new(s)),
        StageKind::PeriodComparison => Configured::PeriodComparison(Box::new(s)),
        StageKind::WaitingTimes => Configured::WaitingTimes(Box::new(s)),
        StageKind::SettingShare => Configured::SettingShare(Box::new(s)),
        StageKind::DidWaits => Configured::DidWaits(Box::new(s)),
        StageKind::Disclosure => Configured::Disclosure(Box::new(s)),
        numeric => {
            return Err(refuse(format!(
                "plugin `{id}`: stage `{numeric}` crosses as columns, not as a serialized call"
            )));
        }
    })
}
