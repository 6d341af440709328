//! Numbers as the publication prints them: thousands separators, rates to whole numbers, ratios to
//! 2 dp, shares as whole percentages. Halves round away from zero, as in Excel, so a rate of
//! 3,550.5 prints as 3,551. A value that is not finite prints as `[x]` (GSS shorthand for "not
//! available").

/// What a missing or non-finite value prints as.
pub const NOT_AVAILABLE: &str = "[x]";

/// `x` rounded to `decimals` places, with commas between thousands: `1234567.891, 2` → `1,234,567.89`.
pub fn thousands(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return NOT_AVAILABLE.to_string();
    }
    let scale = 10f64.powi(decimals as i32);
    // Round half away from zero on the scaled value; i128 holds any realistic count × 10^dp.
    let scaled = (x.abs() * scale).round() as i128;
    let whole = scaled / scale as i128;
    let fraction = scaled % scale as i128;
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + decimals + 2);
    if x < 0.0 && scaled != 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if decimals > 0 {
        out.push('.');
        out.push_str(&format!("{fraction:0decimals$}"));
    }
    out
}

/// A rate per 10,000 (or a count): whole number with thousands separators.
pub fn rate(x: f64) -> String {
    thousands(x, 0)
}

/// A ratio to 2 decimal places.
pub fn ratio(x: f64) -> String {
    thousands(x, 2)
}

/// A share given as a fraction (0.67) printed as a whole percentage ("67%"). A value above 1 is
/// taken to be a percentage already.
pub fn percent(share: f64) -> String {
    percent_dp(share, 0)
}

/// As [`percent`], with `decimals` places ("1.3%").
pub fn percent_dp(share: f64, decimals: usize) -> String {
    if !share.is_finite() {
        return NOT_AVAILABLE.to_string();
    }
    let pct = if share.abs() > 1.0 {
        share
    } else {
        share * 100.0
    };
    format!("{}%", thousands(pct, decimals))
}

/// A p-value: 3 significant places for ordinary values, "<0.001" for small ones.
pub fn p_value(p: f64) -> String {
    if !p.is_finite() {
        NOT_AVAILABLE.to_string()
    } else if p < 0.001 {
        "<0.001".to_string()
    } else {
        thousands(p, 3)
    }
}

/// Text made safe for XML and HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators_and_rounding() {
        assert_eq!(thousands(0.0, 0), "0");
        assert_eq!(thousands(999.0, 0), "999");
        assert_eq!(thousands(1000.0, 0), "1,000");
        assert_eq!(thousands(1_234_567.891, 2), "1,234,567.89");
        assert_eq!(thousands(47_000_000.0, 0), "47,000,000");
        assert_eq!(thousands(-1234.5, 0), "-1,235");
        assert_eq!(thousands(-0.004, 2), "0.00");
        assert_eq!(thousands(f64::NAN, 0), "[x]");
        assert_eq!(thousands(f64::INFINITY, 2), "[x]");
    }

    #[test]
    fn rates_are_whole_numbers_half_away_from_zero() {
        // Published national X-ray rate 2023/24: 3,551.
        assert_eq!(rate(3550.5), "3,551");
        assert_eq!(rate(3550.49), "3,550");
        assert_eq!(rate(2.5), "3");
        assert_eq!(rate(7.6), "8");
    }

    #[test]
    fn ratios_to_two_places() {
        // Published male X-ray rates ratio 2023/24: 3,087 / 3,894 = 0.79.
        assert_eq!(ratio(3087.0 / 3894.0), "0.79");
        assert_eq!(ratio(1.0), "1.00");
        assert_eq!(ratio(13.155), "13.16");
        assert_eq!(ratio(1234.5), "1,234.50");
    }

    #[test]
    fn percentages_from_fractions() {
        assert_eq!(percent(0.67), "67%");
        assert_eq!(percent(0.545), "55%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(67.0), "67%");
        assert_eq!(percent_dp(0.013, 1), "1.3%");
        assert_eq!(percent(f64::NAN), "[x]");
    }

    #[test]
    fn p_values() {
        assert_eq!(p_value(0.0004), "<0.001");
        assert_eq!(p_value(0.0123), "0.012");
        assert_eq!(p_value(f64::NAN), "[x]");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("Kidney & <b>\"x\"</b>"),
            "Kidney &amp; &lt;b&gt;&quot;x&quot;&lt;/b&gt;"
        );
    }
}
