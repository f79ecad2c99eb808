//! A table of the report, written two ways from the same cells: as a
//! markdown table for report.md and as a CSV file beside it, so the two can
//! never disagree.

use std::path::Path;

use anyhow::Context;

/// Rows of text cells under a header; the first column is a label, the
/// others are figures (right-aligned in markdown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Every column holds text (left-aligned), not figures.
    pub text: bool,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self { headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new(), text: false }
    }

    /// A table of text columns (all left-aligned).
    pub fn text<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self { text: true, ..Self::new(headers) }
    }

    /// Adds a row; missing cells are left empty, extra cells dropped, so a
    /// row always lines up with the header.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn to_markdown(&self) -> String {
        let escape = |cell: &str| cell.replace('|', "\\|").replace('\n', " ");
        let line = |cells: &[String]| {
            format!("| {} |\n", cells.iter().map(|cell| escape(cell)).collect::<Vec<_>>().join(" | "))
        };
        let mut text = line(&self.headers);
        let rule: Vec<String> = (0..self.headers.len())
            .map(|index| if index == 0 || self.text { "---".to_string() } else { "---:".to_string() })
            .collect();
        text.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            text.push_str(&line(row));
        }
        text
    }

    pub fn write_csv(&self, path: &Path) -> anyhow::Result<()> {
        let mut writer = csv::Writer::from_path(path).with_context(|| format!("while creating {}", path.display()))?;
        writer.write_record(&self.headers)?;
        for row in &self.rows {
            writer.write_record(row)?;
        }
        writer.flush().with_context(|| format!("while writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(["stage", "p99 ms"]);
        table.row(["250/s", "4.20"]);
        table.row(["a|b"]);
        table
    }

    #[test]
    fn markdown_has_a_header_rule_and_right_aligned_figures() {
        let markdown = sample().to_markdown();
        assert_eq!(markdown, "| stage | p99 ms |\n|---|---:|\n| 250/s | 4.20 |\n| a\\|b |  |\n");
    }

    #[test]
    fn text_tables_align_left() {
        let mut table = Table::text(["what", "value"]);
        table.row(["cores", "2"]);
        assert_eq!(table.to_markdown(), "| what | value |\n|---|---|\n| cores | 2 |\n");
    }

    #[test]
    fn csv_holds_the_same_cells() {
        let dir = std::env::temp_dir().join(format!("mamochi-bench-table-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.csv");

        sample().write_csv(&path).expect("written");

        assert_eq!(std::fs::read_to_string(&path).expect("read"), "stage,p99 ms\n250/s,4.20\na|b,\n");
        std::fs::remove_dir_all(&dir).ok();
    }
}
