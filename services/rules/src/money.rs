//! Money as the guild counts and writes it: whole Chilean pesos, the average
//! ticket of a week, and `$12.345` in emails, statements and the demo.

/// Earnings divided by sales, rounded half up; 0 without sales.
pub fn average_ticket(earnings_clp: i64, sales_count: i64) -> i64 {
    if sales_count <= 0 {
        return 0;
    }
    // In i128 so that neither the doubling nor the sum can overflow.
    let (earnings, count) = (i128::from(earnings_clp), i128::from(sales_count));
    let average = (2 * earnings + count).div_euclid(2 * count);
    i64::try_from(average).unwrap_or(if average > 0 { i64::MAX } else { i64::MIN })
}

/// Pesos the Chilean way: `$12.345` (dot as thousands separator, no decimals).
pub fn format_clp(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}${}", group_thousands(amount.unsigned_abs(), '.'))
}

/// The digits of `magnitude` in groups of three from the right, `separator`
/// between groups: `.` in Spanish text, `,` in the benchmark's tables.
pub fn group_thousands(magnitude: u64, separator: char) -> String {
    let digits = magnitude.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(separator);
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pesos_use_dots_between_thousands() {
        assert_eq!(format_clp(0), "$0");
        assert_eq!(format_clp(999), "$999");
        assert_eq!(format_clp(1_000), "$1.000");
        assert_eq!(format_clp(1_500), "$1.500");
        assert_eq!(format_clp(12_345), "$12.345");
        assert_eq!(format_clp(1_234_567), "$1.234.567");
        assert_eq!(format_clp(-12_345), "-$12.345");
        assert_eq!(format_clp(i64::MIN), "-$9.223.372.036.854.775.808");
    }

    #[test]
    fn digits_group_by_three_from_the_right() {
        assert_eq!(group_thousands(0, ','), "0");
        assert_eq!(group_thousands(999, ','), "999");
        assert_eq!(group_thousands(20_000, ','), "20,000");
        assert_eq!(group_thousands(1_234_567, '.'), "1.234.567");
        assert_eq!(group_thousands(u64::MAX, ','), "18,446,744,073,709,551,615");
    }

    #[test]
    fn the_average_ticket_rounds_half_up() {
        assert_eq!(average_ticket(0, 0), 0, "no sales");
        assert_eq!(average_ticket(3_000, 2), 1_500);
        assert_eq!(average_ticket(1_000, 3), 333, "333.33 rounds down");
        assert_eq!(average_ticket(2_000, 3), 667, "666.67 rounds up");
        assert_eq!(average_ticket(5, 2), 3, "2.5 rounds half up");
        assert_eq!(average_ticket(i64::MAX, 1), i64::MAX, "no overflow");
    }
}
