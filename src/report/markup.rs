//! Escaping for the SVG and HTML reports: every label, evidence line and URL they show comes from what an agent
//! sent, so none of it may become markup.

/// `s` as XML/HTML text or attribute value: `& < > " '` escaped, control characters (invalid in XML) dropped.
///
/// ```
/// assert_eq!(azrw::report::markup::escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The request numbers an evidence line names (`request #7 POST …` → 7), in order.
///
/// ```
/// let seqs = azrw::report::markup::request_numbers("answered: request #3 POST x; retried: request #12 POST x");
/// assert_eq!(seqs, vec![3, 12]);
/// ```
pub fn request_numbers(line: &str) -> Vec<usize> {
    line.match_indices("request #")
        .filter_map(|(i, m)| {
            let digits: String = line[i + m.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_dropped_and_script_tags_escaped() {
        assert_eq!(escape("a\u{1}b<script>"), "ab&lt;script&gt;");
        assert!(request_numbers("token #3, scrape #4").is_empty());
    }
}
