//! Endpoints as values: the template a plan writes ([`EndpointTemplate`], its placeholders
//! parsed once, with errors that say where) and the concrete endpoint a client opens
//! ([`Endpoint`]: a named pipe, a socket path, or a Linux abstract name).
//!
//! ```
//! use pipe_harness_core::endpoint::{Endpoint, EndpointTemplate, Part};
//! use pipe_harness_core::identity::Identity;
//!
//! let t: EndpointTemplate = "{private_dir:61000}/svc-{unique}.sock".parse().unwrap();
//! assert_eq!(t.parts()[0], Part::PrivateDir(Identity::uid(61000)));
//! let err = "{dir}/svc-{uniqe}.sock".parse::<EndpointTemplate>().unwrap_err();
//! assert_eq!(err.column, 11);
//! assert!(err.to_string().contains("unknown placeholder {uniqe}"));
//!
//! assert_eq!(Endpoint::unix("@ph-echo"), Endpoint::Abstract("ph-echo".into()));
//! assert_eq!(Endpoint::pipe(r"\\.\pipe\svc").to_string(), r"\\.\pipe\svc");
//! assert_eq!(Endpoint::pipe("svc"), Endpoint::pipe(r"\\.\pipe\svc"));
//! ```

use crate::identity::Identity;
use std::fmt;
use std::path::PathBuf;

/// One piece of an endpoint template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// Literal text.
    Text(String),
    /// `{unique}`: a name no other run uses.
    Unique,
    /// `{dir}`: the run's shared directory (Unix; anyone may create and remove sockets there).
    Dir,
    /// `{private_dir:ID}`: a directory in the run's folder only that identity may write.
    PrivateDir(Identity),
}

/// An endpoint as a plan writes it: a pipe name (`svc-{unique}`), a socket path
/// (`{dir}/svc-{unique}.sock`, `{private_dir:61000}/svc.sock`) or an abstract name
/// (`@svc-{unique}`), with its placeholders parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointTemplate {
    text: String,
    parts: Vec<Part>,
}

/// What is wrong with an endpoint template, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("endpoint {text:?}, column {column}: {why}")]
pub struct BadTemplate {
    /// The template.
    pub text: String,
    /// Where the problem starts (1-based, in characters).
    pub column: usize,
    /// What is wrong.
    pub why: String,
}

impl EndpointTemplate {
    /// Parses a template; an unknown or unclosed placeholder, or a `{private_dir:...}` that
    /// names no identity, is an error naming its column.
    pub fn parse(text: &str) -> Result<EndpointTemplate, BadTemplate> {
        let bad = |at: usize, why: String| BadTemplate {
            text: text.to_string(),
            column: text[..at].chars().count() + 1,
            why,
        };
        if text.trim().is_empty() {
            return Err(bad(0, "is empty".into()));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            let at = text.len() - rest.len() + open;
            if rest[open..].starts_with('}') {
                return Err(bad(at, "a '}' that closes no placeholder".into()));
            }
            literal.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                return Err(bad(at, format!("{} is not closed with '}}'", &rest[open..])));
            };
            let inner = &rest[open + 1..open + close];
            let part = match inner.split_once(':') {
                None if inner == "unique" => Part::Unique,
                None if inner == "dir" => Part::Dir,
                Some(("private_dir", who)) => {
                    Part::PrivateDir(who.parse().map_err(|e: crate::identity::BadIdentity| {
                        bad(at, format!("{{private_dir:{who}}}: {}; e.g. {{private_dir:61000}}", e.why))
                    })?)
                }
                _ => {
                    return Err(bad(
                        at,
                        format!("unknown placeholder {{{inner}}}; known: {{unique}}, {{dir}}, {{private_dir:UID}}"),
                    ))
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &rest[open + close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(EndpointTemplate { text: text.to_string(), parts })
    }

    /// A template taken as it is when it does not parse (the whole text literal), so that
    /// whatever uses it names the text; plans use [`parse`](EndpointTemplate::parse), which
    /// refuses it.
    pub fn lenient(text: &str) -> EndpointTemplate {
        EndpointTemplate::parse(text)
            .unwrap_or_else(|_| EndpointTemplate { text: text.to_string(), parts: vec![Part::Text(text.to_string())] })
    }

    /// Its pieces.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The concrete name: each placeholder filled by `fill` (the backend's unique name, run
    /// directory, private directories).
    pub fn fill<E>(&self, mut fill: impl FnMut(&Part) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                other => out.push_str(&fill(other)?),
            }
        }
        Ok(out)
    }
}

impl std::str::FromStr for EndpointTemplate {
    type Err = BadTemplate;

    fn from_str(text: &str) -> Result<EndpointTemplate, BadTemplate> {
        EndpointTemplate::parse(text)
    }
}

impl fmt::Display for EndpointTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A concrete endpoint: what a client opens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A named pipe, `\\SERVER\pipe\NAME` (`.` for this machine).
    Pipe {
        /// The machine (`.` here, or a host a remote client names).
        server: String,
        /// The name after `\pipe\`.
        name: String,
    },
    /// A Unix socket file.
    Path(PathBuf),
    /// A Linux abstract socket name (written `@name`).
    Abstract(String),
}

impl Endpoint {
    /// A Unix endpoint: `@name` is abstract, anything else a path.
    pub fn unix(text: &str) -> Endpoint {
        match text.strip_prefix('@') {
            Some(name) => Endpoint::Abstract(name.to_string()),
            None => Endpoint::Path(PathBuf::from(text)),
        }
    }

    /// A named pipe: a full `\\SERVER\pipe\NAME` path, or a bare name on this machine.
    pub fn pipe(text: &str) -> Endpoint {
        let full = text.strip_prefix(r"\\").and_then(|rest| {
            let (server, after) = rest.split_once('\\')?;
            let name = after.strip_prefix("pipe\\").or_else(|| after.strip_prefix("PIPE\\"))?;
            Some(Endpoint::Pipe { server: server.to_string(), name: name.to_string() })
        });
        full.unwrap_or_else(|| Endpoint::Pipe { server: ".".into(), name: text.to_string() })
    }
}

impl fmt::Display for Endpoint {
    /// As a client names it: `\\.\pipe\NAME`, the path, `@NAME`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pipe { server, name } => write!(f, r"\\{server}\pipe\{name}"),
            Endpoint::Path(p) => write!(f, "{}", p.display()),
            Endpoint::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn placeholders_are_parsed_once_into_parts() {
        let t = EndpointTemplate::parse("{dir}/a-{unique}.sock").expect("template");
        assert_eq!(t.parts(), [Part::Dir, Part::Text("/a-".into()), Part::Unique, Part::Text(".sock".into())]);
        let filled = t.fill(|p| {
            Ok::<_, ()>(match p {
                Part::Dir => "/run/x".to_string(),
                _ => "7".to_string(),
            })
        });
        assert_eq!(filled, Ok("/run/x/a-7.sock".to_string()));
        let named = EndpointTemplate::parse("{private_dir:svc:grp}/s").expect("template");
        assert_eq!(
            named.parts()[0],
            Part::PrivateDir(Identity::Account { name: "svc".into(), group: Some("grp".into()) })
        );
    }

    #[rstest]
    #[case("{dir}/x-{uniqe}", 9, "unknown placeholder {uniqe}")]
    #[case("{private_dir:61000/s.sock", 1, "is not closed with '}'")]
    #[case("{private_dir:b b}/s.sock", 1, "{private_dir:b b}: expected UID")]
    #[case("{private_dir:}/s", 1, "{private_dir:}")]
    #[case("a}b", 2, "closes no placeholder")]
    #[case("  ", 1, "is empty")]
    fn a_bad_template_names_the_column(#[case] text: &str, #[case] column: usize, #[case] why: &str) {
        let e = EndpointTemplate::parse(text).expect_err(text);
        assert_eq!(e.column, column, "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }

    #[test]
    fn a_lenient_template_keeps_bad_text_as_it_is() {
        assert_eq!(EndpointTemplate::lenient("x{y").parts(), [Part::Text("x{y".into())]);
    }

    #[rstest]
    #[case(r"\\.\pipe\svc", ".", "svc")]
    #[case(r"\\host\pipe\a\b", "host", r"a\b")]
    #[case("svc", ".", "svc")]
    fn pipe_names_are_read_whole_or_short(#[case] text: &str, #[case] server: &str, #[case] name: &str) {
        assert_eq!(Endpoint::pipe(text), Endpoint::Pipe { server: server.into(), name: name.into() });
    }
}
