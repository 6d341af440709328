//! The serialized call: how the structured stages (attribution, derivation, exclusions,
//! standardisation, factors, summary, data quality, period comparison, waiting times, setting share,
//! disclosure) cross the C ABI.
//!
//! One entry, [`super::FfiVTable::call`], takes a [`Request`] encoded with bincode (serde, the
//! standard configuration) and answers a [`Response`] in bytes the plugin owns until
//! [`super::FfiVTable::free_bytes`]. Both sides are this crate, so the encoding is private to it;
//! [`crate::API_VERSION`] changes whenever these enums do.

use std::borrow::Cow;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use super::{FfiError, FfiStr, STATUS_ERROR, STATUS_OK, STATUS_PANIC, panic_message, write_error};
use crate::types::*;
use crate::{Configured, MethodError};

/// What the host asks a structured stage. Borrowed on the host side, owned once decoded.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request<'a> {
    /// The method's name and, for the stages that have one, its fixed answer (shape, excluded).
    Describe,
    Attribute(Cow<'a, [AttributionCandidate]>),
    Derive(Cow<'a, DerivationInput>),
    Exclude(Cow<'a, StratifiedCounts>),
    Standardise(Cow<'a, StratifiedCounts>),
    FactorRates(Cow<'a, StratifiedCounts>),
    Summarise(Cow<'a, StratifiedCounts>, Cow<'a, StandardisedRates>),
    Overdispersion(Cow<'a, StratifiedCounts>, Cow<'a, StandardisedRates>),
    Tables(Cow<'a, QualityInput>),
    Protect(Cow<'a, Table>, Cow<'a, [String]>),
    CountRatios(Cow<'a, [f64]>, Cow<'a, [f64]>),
    WaitingTimes(Cow<'a, WaitingListInput>),
    SettingShare(Cow<'a, SettingShareInput>),
    DidWaits(Cow<'a, DidWaitsInput>),
}

/// What a structured stage answers; one variant per request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Described {
        method_name: String,
        shape: Option<DerivationShape>,
        excluded: Option<ExcludedUnknowns>,
    },
    Attributions(Vec<Attribution>),
    Derived(Derived),
    Counts(StratifiedCounts),
    Rates(StandardisedRates),
    FactorRates(FactorRates),
    Table(Table),
    Tables(Vec<Table>),
    Protected {
        table: Table,
        changed: usize,
    },
    CountRatios(Vec<CountRatio>),
}

/// Bytes the plugin owns until the host hands them back to `free_bytes`.
#[repr(C)]
pub struct FfiBytes {
    pub ptr: *const u8,
    pub len: usize,
    pub owner: *mut c_void,
}

impl FfiBytes {
    pub const EMPTY: FfiBytes = FfiBytes {
        ptr: std::ptr::null(),
        len: 0,
        owner: std::ptr::null_mut(),
    };
}

/// Encodes a request or response.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MethodError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| MethodError::foreign(format!("cannot encode: {e}")))
}

/// Decodes a request or response; every byte must be used.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MethodError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| MethodError::foreign(format!("undecodable bytes: {e}")))?;
    if used != bytes.len() {
        return Err(MethodError::foreign(format!(
            "undecodable bytes: {} trailing bytes after the answer",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Runs one request against a configured structured stage.
pub fn answer(configured: &Configured, request: Request<'_>) -> Result<Response, MethodError> {
    use Configured as C;
    use Request as R;
    let described = |method_name, shape, excluded| Response::Described {
        method_name,
        shape,
        excluded,
    };
    Ok(match (configured, request) {
        (C::Attribution(m), R::Describe) => described(m.method_name(), None, None),
        (C::Derivation(m), R::Describe) => described(m.method_name(), Some(m.shape()), None),
        (C::Exclusions(m), R::Describe) => described(m.method_name(), None, Some(m.excluded())),
        (C::Standardisation(m), R::Describe) => described(m.method_name(), None, None),
        (C::Factors(m), R::Describe) => described(m.method_name(), None, None),
        (C::Summary(m), R::Describe) => described(m.method_name(), None, None),
        (C::Overdispersion(m), R::Describe) => described(m.method_name(), None, None),
        (C::DataQuality(m), R::Describe) => described(m.method_name(), None, None),
        (C::Disclosure(m), R::Describe) => described(m.method_name(), None, None),
        (C::PeriodComparison(m), R::Describe) => described(m.method_name(), None, None),
        (C::WaitingTimes(m), R::Describe) => described(m.method_name(), None, None),
        (C::SettingShare(m), R::Describe) => described(m.method_name(), None, None),
        (C::DidWaits(m), R::Describe) => described(m.method_name(), None, None),
        (C::Attribution(m), R::Attribute(c)) => Response::Attributions(m.attribute(&c)?),
        (C::Derivation(m), R::Derive(input)) => Response::Derived(m.derive(&input)?),
        (C::Exclusions(m), R::Exclude(counts)) => Response::Counts(m.apply(&counts)?),
        (C::Standardisation(m), R::Standardise(counts)) => Response::Rates(m.standardise(&counts)?),
        (C::Factors(m), R::FactorRates(counts)) => Response::FactorRates(m.factor_rates(&counts)?),
        (C::Summary(m), R::Summarise(counts, rates)) => {
            Response::Table(m.summarise(&counts, &rates)?)
        }
        (C::Overdispersion(m), R::Overdispersion(counts, rates)) => {
            Response::Tables(m.tables(&counts, &rates)?)
        }
        (C::DataQuality(m), R::Tables(input)) => Response::Tables(m.tables(&input)?),
        (C::Disclosure(m), R::Protect(table, columns)) => {
            let mut table = table.into_owned();
            let changed = m.protect(&mut table, &columns)?;
            Response::Protected { table, changed }
        }
        (C::PeriodComparison(m), R::CountRatios(a, b)) => {
            Response::CountRatios(m.intervals(&a, &b)?)
        }
        (C::WaitingTimes(m), R::WaitingTimes(input)) => Response::Tables(m.tables(&input)?),
        (C::SettingShare(m), R::SettingShare(input)) => Response::Tables(m.tables(&input)?),
        (C::DidWaits(m), R::DidWaits(input)) => Response::Tables(m.tables(&input)?),
        (configured, request) => {
            return Err(MethodError::foreign(format!(
                "a `{}` plugin cannot answer {}",
                configured.stage(),
                request_name(&request)
            )));
        }
    })
}

fn request_name(request: &Request<'_>) -> &'static str {
    match request {
        Request::Describe => "describe",
        Request::Attribute(_) => "attribute",
        Request::Derive(_) => "derive",
        Request::Exclude(_) => "exclude",
        Request::Standardise(_) => "standardise",
        Request::FactorRates(_) => "factor_rates",
        Request::Summarise(..) => "summarise",
        Request::Overdispersion(..) => "overdispersion",
        Request::Tables(_) => "tables",
        Request::Protect(..) => "protect",
        Request::CountRatios(..) => "count_ratios",
        Request::WaitingTimes(_) => "waiting_times",
        Request::SettingShare(_) => "setting_share",
        Request::DidWaits(_) => "did_waits",
    }
}

/// The plugin side of [`super::FfiVTable::call`]: decode, answer, encode; panics caught.
pub extern "C" fn plugin_call(
    handle: *mut c_void,
    input: FfiStr,
    output: *mut FfiBytes,
    error: *mut FfiError,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if handle.is_null() || output.is_null() {
            return Err(MethodError::new("null handle or output"));
        }
        // SAFETY: handle came from plugin_configure; input is the host's live bytes.
        let configured = unsafe { &*(handle as *const Configured) };
        let bytes = if input.ptr.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(input.ptr, input.len) }
        };
        let request: Request<'static> = decode(bytes)?;
        encode(&answer(configured, request)?)
    }));
    match result {
        Ok(Ok(bytes)) => {
            write_bytes(output, bytes);
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

/// Hands `bytes` to the host through `output`, to be freed by [`plugin_free_bytes`].
pub fn write_bytes(output: *mut FfiBytes, bytes: Vec<u8>) {
    let owner = Box::new(bytes);
    let ffi = FfiBytes {
        ptr: owner.as_ptr(),
        len: owner.len(),
        owner: Box::into_raw(owner).cast(),
    };
    // SAFETY: the host passes a valid, writable FfiBytes (checked non-null by the caller).
    unsafe { output.write(ffi) };
}

pub extern "C" fn plugin_free_bytes(output: *mut FfiBytes) {
    if output.is_null() {
        return;
    }
    // SAFETY: output was written by write_bytes; owner is our Box.
    unsafe {
        let owner = (*output).owner;
        if !owner.is_null() {
            drop(Box::from_raw(owner.cast::<Vec<u8>>()));
        }
        output.write(FfiBytes::EMPTY);
    }
}

// ---------------------------------------------------------------------------------------------
// Host side: the structured stage traits over a loaded vtable.

/// A configured foreign structured stage, with what it said about itself at configure time.
pub(super) struct ForeignStructured {
    pub(super) method: super::ForeignMethod,
    pub(super) method_name: String,
    pub(super) shape: Option<DerivationShape>,
    pub(super) excluded: Option<ExcludedUnknowns>,
}

impl super::ForeignMethod {
    /// One serialized call: the plugin's error, panic or undecodable answer names the plugin.
    pub(super) fn request(&self, request: &Request<'_>) -> Result<Response, MethodError> {
        let bytes = encode(request)?;
        let mut output = FfiBytes::EMPTY;
        let mut error = FfiError::EMPTY;
        // SAFETY: vtable and handle are live; the request bytes outlive the call.
        let status = unsafe {
            ((*self.vtable).call)(
                self.handle,
                FfiStr::of_bytes(&bytes),
                &mut output,
                &mut error,
            )
        };
        if status != STATUS_OK {
            let (message, _) = super::take_error(self.vtable, &mut error);
            return Err(MethodError::foreign(format!(
                "plugin `{}`: {message}",
                self.id
            )));
        }
        let answer = if output.ptr.is_null() {
            decode(&[])
        } else {
            // SAFETY: the plugin wrote len live bytes, ours to read until free_bytes.
            decode(unsafe { std::slice::from_raw_parts(output.ptr, output.len) })
        };
        // SAFETY: output was written by this vtable's call.
        unsafe { ((*self.vtable).free_bytes)(&mut output) };
        answer.map_err(|e| {
            MethodError::foreign(format!(
                "plugin `{}` answered {}: {e}",
                self.id,
                request_name(request)
            ))
        })
    }

    /// The answer was of another kind than the request (a plugin built from other sources).
    fn mismatch(&self, request: &str) -> MethodError {
        MethodError::foreign(format!(
            "plugin `{}` answered {request} with another kind of value",
            self.id
        ))
    }
}

impl ForeignStructured {
    pub(super) fn describe(method: super::ForeignMethod) -> Result<Self, MethodError> {
        match method.request(&Request::Describe)? {
            Response::Described {
                method_name,
                shape,
                excluded,
            } => Ok(ForeignStructured {
                method,
                method_name,
                shape,
                excluded,
            }),
            _ => Err(method.mismatch("describe")),
        }
    }
}

impl crate::AttributionMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn attribute(
        &self,
        candidates: &[AttributionCandidate],
    ) -> Result<Vec<Attribution>, MethodError> {
        match self
            .method
            .request(&Request::Attribute(Cow::Borrowed(candidates)))?
        {
            Response::Attributions(a) if a.len() == candidates.len() => Ok(a),
            Response::Attributions(a) => Err(MethodError::foreign(format!(
                "plugin `{}` returned {} attributions for {} candidates",
                self.method.id,
                a.len(),
                candidates.len()
            ))),
            _ => Err(self.method.mismatch("attribute")),
        }
    }
}

impl crate::DerivationRules for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn shape(&self) -> DerivationShape {
        self.shape
            .clone()
            .expect("checked at configure: a derivation plugin describes its shape")
    }
    fn derive(&self, input: &DerivationInput) -> Result<Derived, MethodError> {
        match self
            .method
            .request(&Request::Derive(Cow::Borrowed(input)))?
        {
            Response::Derived(d) => Ok(d),
            _ => Err(self.method.mismatch("derive")),
        }
    }
}

impl crate::ExclusionRule for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn excluded(&self) -> ExcludedUnknowns {
        self.excluded
            .expect("checked at configure: an exclusions plugin describes what it excludes")
    }
    fn apply(&self, counts: &StratifiedCounts) -> Result<StratifiedCounts, MethodError> {
        match self
            .method
            .request(&Request::Exclude(Cow::Borrowed(counts)))?
        {
            Response::Counts(c) => Ok(c),
            _ => Err(self.method.mismatch("exclude")),
        }
    }
}

impl crate::StandardisationMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn standardise(&self, counts: &StratifiedCounts) -> Result<StandardisedRates, MethodError> {
        match self
            .method
            .request(&Request::Standardise(Cow::Borrowed(counts)))?
        {
            Response::Rates(r) => Ok(r),
            _ => Err(self.method.mismatch("standardise")),
        }
    }
}

impl crate::FactorMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn factor_rates(&self, counts: &StratifiedCounts) -> Result<FactorRates, MethodError> {
        match self
            .method
            .request(&Request::FactorRates(Cow::Borrowed(counts)))?
        {
            Response::FactorRates(r) => Ok(r),
            _ => Err(self.method.mismatch("factor_rates")),
        }
    }
}

impl crate::SummaryMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn summarise(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Table, MethodError> {
        match self.method.request(&Request::Summarise(
            Cow::Borrowed(counts_shape),
            Cow::Borrowed(rates),
        ))? {
            Response::Table(t) => Ok(t),
            _ => Err(self.method.mismatch("summarise")),
        }
    }
}

impl crate::OverdispersionMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn tables(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Vec<Table>, MethodError> {
        match self.method.request(&Request::Overdispersion(
            Cow::Borrowed(counts_shape),
            Cow::Borrowed(rates),
        ))? {
            Response::Tables(t) => Ok(t),
            _ => Err(self.method.mismatch("overdispersion")),
        }
    }
}

impl crate::DataQualityMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn tables(&self, input: &QualityInput) -> Result<Vec<Table>, MethodError> {
        match self
            .method
            .request(&Request::Tables(Cow::Borrowed(input)))?
        {
            Response::Tables(t) => Ok(t),
            _ => Err(self.method.mismatch("tables")),
        }
    }
}

impl crate::CountRatioMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn intervals(
        &self,
        period_a: &[f64],
        period_b: &[f64],
    ) -> Result<Vec<CountRatio>, MethodError> {
        let request = Request::CountRatios(Cow::Borrowed(period_a), Cow::Borrowed(period_b));
        match self.method.request(&request)? {
            Response::CountRatios(r) if r.len() == period_a.len() => Ok(r),
            Response::CountRatios(r) => Err(MethodError::foreign(format!(
                "plugin `{}` returned {} count ratios for {} pairs",
                self.method.id,
                r.len(),
                period_a.len()
            ))),
            _ => Err(self.method.mismatch("count_ratios")),
        }
    }
}

impl crate::WaitingTimesMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn tables(&self, input: &WaitingListInput) -> Result<Vec<Table>, MethodError> {
        match self
            .method
            .request(&Request::WaitingTimes(Cow::Borrowed(input)))?
        {
            Response::Tables(t) => Ok(t),
            _ => Err(self.method.mismatch("waiting_times")),
        }
    }
}

impl crate::SettingShareMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn tables(&self, input: &SettingShareInput) -> Result<Vec<Table>, MethodError> {
        match self
            .method
            .request(&Request::SettingShare(Cow::Borrowed(input)))?
        {
            Response::Tables(t) => Ok(t),
            _ => Err(self.method.mismatch("setting_share")),
        }
    }
}

impl crate::DidWaitsMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn tables(&self, input: &DidWaitsInput) -> Result<Vec<Table>, MethodError> {
        match self
            .method
            .request(&Request::DidWaits(Cow::Borrowed(input)))?
        {
            Response::Tables(t) => Ok(t),
            _ => Err(self.method.mismatch("did_waits")),
        }
    }
}

impl crate::DisclosureMethod for ForeignStructured {
    fn method_name(&self) -> String {
        self.method_name.clone()
    }
    fn protect(&self, table: &mut Table, count_columns: &[String]) -> Result<usize, MethodError> {
        let request = Request::Protect(Cow::Borrowed(table), Cow::Borrowed(count_columns));
        match self.method.request(&request)? {
            // Disclosure may change cells, never the table's shape.
            Response::Protected {
                table: out,
                changed,
            } if out.columns == table.columns
                && out.rows.len() == table.rows.len()
                && out.rows.iter().all(|r| r.len() == table.columns.len()) =>
            {
                *table = out;
                Ok(changed)
            }
            Response::Protected { .. } => Err(MethodError::foreign(format!(
                "plugin `{}` returned a protected table of another shape (columns or rows \
                 changed)",
                self.method.id
            ))),
            _ => Err(self.method.mismatch("protect")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_keeps_nan_bits() {
        let mut counts = StratifiedCounts::zeroed(
            vec![Area {
                code: "A".into(),
                name: "Area A".into(),
            }],
            vec!["m".into()],
            vec![Dimension::new("sex", &["1", "2"])],
        );
        counts.tests[1] = f64::NAN;
        counts.population[0] = 12.5;
        let bytes = encode(&Request::Exclude(Cow::Borrowed(&counts))).unwrap();
        let back: Request<'static> = decode(&bytes).unwrap();
        let Request::Exclude(back) = back else {
            panic!("another request: {back:?}")
        };
        assert_eq!(back.population, counts.population);
        assert!(back.tests[1].is_nan() && back.tests[0] == 0.0);
        assert_eq!(back.areas, counts.areas);
    }

    #[test]
    fn a_setting_share_request_round_trips() {
        let input = SettingShareInput {
            sites: vec![SettingSite {
                code: "J2H6R".into(),
                name: "West Kent CDC".into(),
                region_code: "Y59".into(),
                region_name: "South East".into(),
                icb_code: "QKS".into(),
            }],
            activity: vec![SettingActivityRow {
                site: 0,
                month: "2024-08".into(),
                test_name: "Plain X-ray".into(),
                dm01_test: None,
                tests: 12.0,
            }],
            provider_icbs: vec!["QKS".into()],
            ..SettingShareInput::default()
        };
        let bytes = encode(&Request::SettingShare(Cow::Borrowed(&input))).unwrap();
        let back: Request<'static> = decode(&bytes).unwrap();
        let Request::SettingShare(back) = back else {
            panic!("another request: {back:?}")
        };
        assert_eq!(*back, input);
    }

    struct KeepAll;

    impl crate::ExclusionRule for KeepAll {
        fn method_name(&self) -> String {
            "keep all".into()
        }
        fn excluded(&self) -> ExcludedUnknowns {
            ExcludedUnknowns {
                sex: false,
                age_band: false,
                imd_quintile: true,
            }
        }
        fn apply(&self, counts: &StratifiedCounts) -> Result<StratifiedCounts, MethodError> {
            Ok(counts.without_unknown_categories())
        }
    }

    #[test]
    fn a_stage_answers_its_own_requests_and_refuses_another_stages() {
        let rule = Configured::Exclusions(Box::new(KeepAll));
        let Response::Described {
            method_name,
            shape,
            excluded,
        } = answer(&rule, Request::Describe).unwrap()
        else {
            panic!("describe answers Described")
        };
        assert_eq!(method_name, "keep all");
        assert!(shape.is_none() && excluded.is_some_and(|e| e.imd_quintile && !e.sex));
        let counts = StratifiedCounts::zeroed(vec![], vec![], vec![Dimension::new("sex", &["1"])]);
        let e = answer(&rule, Request::Standardise(Cow::Borrowed(&counts))).unwrap_err();
        assert!(
            e.message
                .contains("`exclusions` plugin cannot answer standardise"),
            "{e}"
        );
        assert_eq!(e.kind, crate::MethodErrorKind::Foreign);
    }

    #[test]
    fn garbage_and_trailing_bytes_are_refused() {
        assert!(decode::<Response>(&[0xff, 0xff, 0xff]).is_err());
        let mut bytes = encode(&Response::Tables(Vec::new())).unwrap();
        assert!(decode::<Response>(&bytes).is_ok());
        bytes.push(0);
        let e = decode::<Response>(&bytes).unwrap_err();
        assert!(e.message.contains("trailing"), "{e}");
    }
}
