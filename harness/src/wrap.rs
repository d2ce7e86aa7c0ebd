//! Text for an 80-column terminal: words wrapped to a width, continuation lines indented.

/// The width the human reports are wrapped to.
pub const COLUMNS: usize = 80;

/// `text` wrapped at word boundaries to lines of at most `width` characters (a word longer
/// than a line, such as a path, stands alone on its line, unbroken): the first line starts with
/// `first`, the others with `rest`. Line breaks in `text` are kept. No trailing newline.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut lead = first;
    for paragraph in text.split('\n') {
        let mut line = String::from(lead);
        let mut empty = true;
        // Runs of spaces are kept ("FINDING  case": an empty word between two spaces), but
        // not at the start of a wrapped line.
        let mut words = paragraph.split(' ');
        let lead_spaces = paragraph.len() - paragraph.trim_start_matches(' ').len();
        line.push_str(&" ".repeat(lead_spaces));
        for _ in 0..lead_spaces {
            words.next();
        }
        for word in words {
            if word.is_empty() && empty {
                continue;
            }
            let fits = line.chars().count() + 1 + word.chars().count() <= width;
            if !empty && !fits {
                out.push_str(line.trim_end());
                out.push('\n');
                line = String::from(rest);
                empty = true;
                if word.is_empty() {
                    continue;
                }
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
        lead = rest;
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_wrap_under_the_width_and_a_long_word_stands_alone() {
        let text = "a finding with evidence that runs on well past the eightieth column of a terminal, and /a/very/long/path/that/cannot/be/broken/anywhere/at/all/because/it/has/no/spaces/in/it/at/all";
        let w = wrap(text, 40, "  ", "    ");
        for l in w.lines() {
            assert!(l.chars().count() <= 40 || !l.trim().contains(' '), "{l:?}");
        }
        assert!(w.starts_with("  a finding") && w.lines().skip(1).all(|l| l.starts_with("    ")), "{w}");
        assert_eq!(w.split_whitespace().collect::<Vec<_>>(), text.split_whitespace().collect::<Vec<_>>());
        assert_eq!(wrap("short", 80, "- ", "  "), "- short");
        assert_eq!(wrap("FINDING  case 3", 80, "", ""), "FINDING  case 3", "runs of spaces kept");
    }
}
