//! Windows command-line quoting.
//!
//! `CreateProcessW` takes one string; the child's C runtime splits it back into `argv` by the
//! rules of `CommandLineToArgvW`: backslashes are literal except before a quote, where `2n`
//! backslashes and a quote mean `n` backslashes and a delimiter, and `2n+1` mean `n` and a
//! literal quote. This module builds the string so each argument comes back unchanged.

use crate::error::{Error, Result};

/// Appends `arg` to `out`, quoted so `CommandLineToArgvW` returns it unchanged.
pub fn push_arg(out: &mut String, arg: &str) -> Result<()> {
    if arg.contains('\0') {
        return Err(Error::invalid("command-line argument", format!("{arg:?} contains a NUL")));
    }
    if !out.is_empty() {
        out.push(' ');
    }
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\x0b', '"']) {
        out.push_str(arg);
        return Ok(());
    }
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    Ok(())
}

/// The whole command line: the program (quoted) then each argument.
pub fn command_line(program: &str, args: &[String]) -> Result<String> {
    let mut out = String::new();
    push_arg(&mut out, program)?;
    for a in args {
        push_arg(&mut out, a)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A reference splitter with the `CommandLineToArgvW` rules for arguments after the first.
    fn split(s: &str) -> Vec<String> {
        let (mut args, mut cur, mut in_quotes, mut started) = (Vec::new(), String::new(), false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let mut n = 0;
                while i < chars.len() && chars[i] == '\\' {
                    n += 1;
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    cur.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += 1;
                    }
                } else {
                    cur.extend(std::iter::repeat_n('\\', n));
                }
                started = true;
                continue;
            }
            if c == '"' {
                in_quotes = !in_quotes;
                started = true;
            } else if (c == ' ' || c == '\t') && !in_quotes {
                if started {
                    args.push(std::mem::take(&mut cur));
                    started = false;
                }
            } else {
                cur.push(c);
                started = true;
            }
            i += 1;
        }
        if started {
            args.push(cur);
        }
        args
    }

    #[rstest]
    #[case(&["plain"])]
    #[case(&["two words", ""])]
    #[case(&[r"C:\dir with space\", r#"say "hi""#])]
    #[case(&[r#"\\server\pipe\"x"#, r"trailing\\", "\t"])]
    fn arguments_survive_the_round_trip(#[case] args: &[&str]) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let line = command_line("prog.exe", &args).expect("no NULs");
        let back = split(&line);
        assert_eq!(&back[1..], &args[..], "line was {line}");
    }

    #[test]
    fn nul_is_refused_with_the_argument_named() {
        let err = command_line("p", &["a\0b".into()]).expect_err("NUL");
        assert!(err.to_string().contains("contains a NUL"));
    }
}
