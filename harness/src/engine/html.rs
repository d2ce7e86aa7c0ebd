//! One self-contained HTML page for audits, campaigns and replays: no scripts, no external
//! styles, fonts or images (a `Content-Security-Policy` that forbids them all, too), readable
//! offline and attachable to a CI run. Drawn from the same typed data the JSON reports
//! serialize ([`AuditReport`], [`ProbeReport`], [`Campaign`], [`Reproducer`]); charts are inline
//! SVG from the campaign's [`Sample`](super::live::Sample)s.
//!
//! Everything that came from the server under test (its output, its bytes, a bucket built from
//! its crash report) is escaped as text: `<`, `>`, `&`, quotes, and control characters, so a
//! hostile server cannot put markup in the page. Colour is never the only signal: every
//! verdict cell carries its label.

use super::live::{Campaign, Reproducer, Sample};
use super::report::AuditReport;
use super::verdict::Verdict;
use crate::rules::{ProbeReport, Status};
use std::fmt::Write as _;

/// One part of a page.
#[non_exhaustive]
pub enum Part<'a> {
    /// An audit, with the probe of the platform it ran on.
    Audit {
        /// The audit.
        report: &'a AuditReport,
        /// The probe's rule table (`None`: not known, as for a report read back from JSON,
        /// which does not carry it).
        probe: Option<&'a ProbeReport>,
    },
    /// A live-fuzzing campaign.
    Campaign {
        /// The target's name.
        target: &'a str,
        /// The campaign.
        campaign: &'a Campaign,
        /// Its settings (seed, duration, jobs...), as shown.
        settings: &'a [(String, String)],
        /// The replay command of each finding, in the campaign's order.
        replays: &'a [String],
    },
    /// A reproducer replayed on fresh servers.
    Replay {
        /// The target's name.
        target: &'a str,
        /// The reproducer.
        reproducer: &'a Reproducer,
        /// Replays made, and how many ended in its bucket.
        matched: u32,
        /// Of how many.
        of: u32,
        /// The command that replays it again.
        command: &'a str,
    },
}

/// `s` as HTML text: markup characters as entities, control characters (but tab and newline)
/// as visible `\xNN`.
pub fn escape(s: &str) -> String {
    super::report::escape_markup(s, "&#39;", |c, out| {
        let _ = write!(out, "\\x{:02X}", c as u32);
    })
}

/// A hex dump: 16 bytes a line, offset, hex, and the bytes as ASCII (others as `.`), escaped.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, row) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String =
            row.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
        let _ = writeln!(out, "{:08x}  {:<47}  {}", i * 16, hex.join(" "), escape(&ascii));
    }
    if bytes.is_empty() {
        out.push_str("(no bytes)\n");
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1f24}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f2f5}code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.v{font-weight:600;white-space:nowrap}
.pass{background:#d8f5dd;color:#0b5d1e}.fail{background:#fbd5d5;color:#8e1111}
.unverifiable{background:#fff1c2;color:#6b4e00}.not_applicable{background:#e6e8eb;color:#3b4047}
.error{background:#e8d5fb;color:#4b1a7a}
.holds{color:#0b5d1e}.does_not_hold{color:#8e1111;font-weight:600}.untestable{color:#6b4e00}.na{color:#59606a}
nav li{margin:.15em 0}.muted{color:#59606a}
svg{background:#fbfcfd;border:1px solid #ccd;margin:.3em .6em .3em 0}
";

/// The label printed in a verdict cell.
fn label(kind: &str) -> &'static str {
    match kind {
        "pass" => "PASS",
        "fail" => "FAIL",
        "unverifiable" => "UNVERIFIABLE",
        "not_applicable" => "NOT APPLICABLE",
        _ => "ERROR",
    }
}

fn cell(kind: &str) -> String {
    format!("<td class=\"v {kind}\">{}</td>", label(kind))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ul>");
    for i in items {
        let _ = write!(out, "<li>{}</li>", escape(i));
    }
    out.push_str("</ul>");
    out
}

impl Part<'_> {
    fn title(&self) -> String {
        match self {
            Part::Audit { report, .. } => {
                let targets: std::collections::BTreeSet<&str> =
                    report.results.iter().map(|r| r.target.as_str()).collect();
                format!("Audit of {}", targets.into_iter().collect::<Vec<_>>().join(", "))
            }
            Part::Campaign { target, .. } => format!("Campaign against {target}"),
            Part::Replay { target, reproducer, .. } => format!("Replay of {} against {target}", reproducer.file_name()),
        }
    }
}

/// The page: a title, an index when there is more than one part, and each part.
pub fn render(title: &str, parts: &[Part<'_>]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p class=\"muted\">{} &middot; one file, no scripts, nothing loaded from elsewhere</p>\n",
        escape(title),
        escape(title),
        escape(&format!("pipe-harness {}", env!("CARGO_PKG_VERSION")))
    );
    let audits: Vec<&AuditReport> =
        parts.iter().filter_map(|p| if let Part::Audit { report, .. } = p { Some(*report) } else { None }).collect();
    if parts.len() > 1 {
        out.push_str("<nav><h2>Index</h2><ol>");
        if audits.len() > 1 {
            out.push_str("<li><a href=\"#matrix\">Scenarios by target</a></li>");
        }
        for (i, p) in parts.iter().enumerate() {
            let _ = write!(out, "<li><a href=\"#part{i}\">{}</a></li>", escape(&p.title()));
        }
        out.push_str("</ol></nav>\n");
    }
    if audits.len() > 1 {
        out.push_str(&matrix(&audits));
    }
    for (i, p) in parts.iter().enumerate() {
        let _ = writeln!(out, "<section id=\"part{i}\"><h2>{}</h2>", escape(&p.title()));
        match p {
            Part::Audit { report, probe } => audit(&mut out, report, *probe),
            Part::Campaign { campaign, settings, replays, .. } => campaign_part(&mut out, campaign, settings, replays),
            Part::Replay { reproducer, matched, of, command, .. } => {
                let _ = write!(
                    out,
                    "<p>{matched} of {of} replays on fresh servers ended in the bucket <code>{}</code>.</p>",
                    escape(&reproducer.bucket.0)
                );
                finding(&mut out, reproducer, command);
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Scenarios (rows) by target (columns) over several audits.
fn matrix(audits: &[&AuditReport]) -> String {
    let mut targets: Vec<&str> = Vec::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for r in audits.iter().flat_map(|a| &a.results) {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let mut out = String::from("<section id=\"matrix\"><h2>Scenarios by target</h2><table><tr><th>scenario</th>");
    for t in &targets {
        let _ = write!(out, "<th>{}</th>", escape(t));
    }
    out.push_str("</tr>");
    for s in &scenarios {
        let _ = write!(out, "<tr><td><code>{}</code></td>", escape(s));
        for t in &targets {
            match audits.iter().flat_map(|a| &a.results).find(|r| r.scenario == *s && r.target == *t) {
                Some(r) => out.push_str(&cell(r.verdict.kind())),
                None => out.push_str("<td class=\"muted\">not run</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></section>\n");
    out
}

fn audit(out: &mut String, report: &AuditReport, probe: Option<&ProbeReport>) {
    let _ = write!(out, "<p>Platform <b>{}</b>, seed <code>{}</code>.</p>", escape(&report.platform), report.seed);
    let count = |k: &str| report.results.iter().filter(|r| r.verdict.kind() == k).count();
    let _ = write!(
        out,
        "<p>{} checks: {} pass, {} fail, {} unverifiable, {} not applicable, {} error.</p>",
        report.results.len(),
        count("pass"),
        count("fail"),
        count("unverifiable"),
        count("not_applicable"),
        count("error")
    );
    out.push_str(
        "<table class=\"verdicts\"><tr><th>scenario</th><th>target</th><th>verdict</th><th>in short</th></tr>",
    );
    for r in &report.results {
        let short = match &r.verdict {
            Verdict::Pass { .. } => String::new(),
            Verdict::Fail(f) => format!("{:?}: {}", f.severity, f.title),
            Verdict::Unverifiable { reason, .. }
            | Verdict::NotApplicable { reason, .. }
            | Verdict::Error { reason } => reason.clone(),
        };
        let _ = write!(
            out,
            "<tr class=\"row\" data-scenario=\"{}\"><td><a href=\"#{}-{}\"><code>{}</code></a></td><td>{}</td>{}<td>{}</td></tr>",
            escape(&r.scenario),
            escape(&r.target),
            escape(&r.scenario),
            escape(&r.scenario),
            escape(&r.target),
            cell(r.verdict.kind()),
            escape(&short)
        );
    }
    out.push_str("</table>");
    for r in &report.results {
        let _ = write!(
            out,
            "<h3 id=\"{}-{}\"><code>{}</code> on {} <span class=\"v {}\">{}</span></h3>",
            escape(&r.target),
            escape(&r.scenario),
            escape(&r.scenario),
            escape(&r.target),
            r.verdict.kind(),
            label(r.verdict.kind())
        );
        match &r.verdict {
            Verdict::Pass { evidence } => out.push_str(&list(evidence)),
            Verdict::Fail(f) => {
                let _ = write!(out, "<p><b>Severity {:?}</b>: {}</p>", f.severity, escape(&f.title));
                out.push_str(&list(&f.evidence));
                if let Some(seed) = f.seed {
                    let _ = write!(out, "<p>Seed <code>{seed}</code></p>");
                }
                if let Some(cmd) = &f.replay {
                    let _ = write!(out, "<p>Replay:</p><pre class=\"replay\">{}</pre>", escape(cmd));
                }
            }
            Verdict::Unverifiable { reason, rules, evidence } => {
                let _ = write!(out, "<p>{}</p>", escape(reason));
                let ids: Vec<String> = rules.iter().map(|r| r.id().to_string()).collect();
                let _ = write!(out, "<p>Rests on: <code>{}</code></p>", escape(&ids.join(", ")));
                out.push_str(&list(evidence));
            }
            Verdict::NotApplicable { reason, needs } => {
                let _ = write!(out, "<p>{}</p><p>To run it, add: <code>{}</code></p>", escape(reason), escape(needs));
            }
            Verdict::Error { reason } => {
                let _ = write!(out, "<pre>{}</pre>", escape(reason));
            }
        }
    }
    let Some(probe) = probe else {
        out.push_str("<p class=\"muted\">The probe's rule table is not in this report (an audit's JSON does not carry it): <code>pipe-harness probe</code> on the machine it ran on shows it.</p>");
        return;
    };
    let p = &probe.platform;
    let _ = write!(
        out,
        "<h3>The platform's rules (the probe)</h3><p>{}{}, {}</p><table class=\"rules\"><tr><th>rule</th><th>status</th><th>what it says</th><th>evidence</th></tr>",
        escape(&p.os),
        p.wine_version.as_deref().map(|w| format!(" (Wine {})", escape(w))).unwrap_or_default(),
        escape(p.user.as_deref().unwrap_or("unknown user"))
    );
    for r in &probe.results {
        let class = match r.status {
            Status::Holds => "holds",
            Status::DoesNotHold => "does_not_hold",
            Status::Untestable => "untestable",
            Status::NotApplicable => "na",
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            r.rule.id(),
            r.status.label(),
            escape(r.rule.summary()),
            list(&r.evidence)
        );
    }
    out.push_str("</table>");
}

/// A line chart of `points` (x seconds, y value) as inline SVG, with its title and the range.
fn chart(title: &str, points: &[(f64, f64)]) -> String {
    // One point (a campaign shorter than the sampling): a level line from the start to it.
    let single;
    let points = match points {
        [(x, y)] => {
            single = [(0.0, *y), (*x, *y)];
            &single[..]
        }
        p => p,
    };
    let (w, h, pad) = (420.0, 150.0, 28.0);
    let xmax = points.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let ymax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", pad + x / xmax * (w - 2.0 * pad), h - pad - y / ymax * (h - 2.0 * pad)))
        .collect();
    format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{t}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{t}</title><text x=\"{pad}\" y=\"16\" font-size=\"12\">{t}</text>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#889\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#889\"/>\
         <text x=\"2\" y=\"{top}\" font-size=\"10\">{ymax:.0}</text><text x=\"{r}\" y=\"{lab}\" font-size=\"10\" text-anchor=\"end\">{xmax:.0} s</text>\
         <polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"{}\"/></svg>",
        coords.join(" "),
        t = escape(title),
        b = h - pad,
        r = w - pad,
        top = pad + 4.0,
        lab = h - 8.0,
    )
}

fn campaign_part(out: &mut String, c: &Campaign, settings: &[(String, String)], replays: &[String]) {
    let secs = (c.elapsed_ms as f64 / 1000.0).max(0.001);
    let _ = write!(
        out,
        "<table class=\"summary\"><tr><th>cases</th><td>{}</td></tr><tr><th>cases/s</th><td>{}</td></tr>\
         <tr><th>elapsed</th><td>{:.1} s</td></tr><tr><th>findings</th><td>{}</td></tr><tr><th>unconfirmed buckets</th><td>{}</td></tr>\
         <tr><th>servers started</th><td>{} for cases, {} for replays</td></tr>{}</table>",
        c.cases,
        match c.cases as f64 / secs {
            r if r < 10.0 => format!("{r:.1}"),
            r => format!("{r:.0}"),
        },
        secs,
        c.findings.len(),
        c.unconfirmed.len(),
        c.restarts,
        c.replay_starts,
        match c.edges {
            Some(e) => format!("<tr><th>edges</th><td>{e}</td></tr><tr><th>corpus (inputs reaching new edges)</th><td>{}</td></tr>", c.covered_inputs),
            None => "<tr><th>edges</th><td>black-box (no coverage)</td></tr>".into(),
        }
    );
    out.push_str("<h3>Settings</h3><table class=\"settings\">");
    for (k, v) in settings {
        let _ = write!(out, "<tr><th>{}</th><td><code>{}</code></td></tr>", escape(k), escape(v));
    }
    out.push_str("</table><h3>Over time</h3><div class=\"charts\">");
    let t: &[Sample] = &c.timeline;
    let at = |s: &Sample| s.elapsed_ms as f64 / 1000.0;
    // The rate over each interval of half a second or more (the sample at the very end may
    // follow the last one by a few milliseconds: no rate worth drawing).
    let rate: Vec<(f64, f64)> = t
        .windows(2)
        .filter(|w| w[1].elapsed_ms.saturating_sub(w[0].elapsed_ms) >= 500)
        .map(|w| {
            let dt = (w[1].elapsed_ms - w[0].elapsed_ms) as f64 / 1000.0;
            (at(&w[1]), w[1].cases.saturating_sub(w[0].cases) as f64 / dt)
        })
        .collect();
    let rate = if rate.is_empty() { t.iter().map(|s| (at(s), 0.0)).collect() } else { rate };
    out.push_str(&chart("cases per second", &rate));
    if t.iter().any(|s| s.edges.is_some()) {
        out.push_str(&chart("edges", &t.iter().map(|s| (at(s), s.edges.unwrap_or(0) as f64)).collect::<Vec<_>>()));
    }
    out.push_str(&chart("corpus size", &t.iter().map(|s| (at(s), s.corpus as f64)).collect::<Vec<_>>()));
    out.push_str(&chart("findings", &t.iter().map(|s| (at(s), s.findings as f64)).collect::<Vec<_>>()));
    out.push_str("</div>");
    if c.findings.is_empty() {
        out.push_str("<p>No findings.</p>");
    }
    for (i, r) in c.findings.iter().enumerate() {
        let cmd = replays.get(i).map_or_else(String::new, String::clone);
        finding(out, r, &cmd);
    }
    for e in &c.ended_early {
        let _ = write!(out, "<p class=\"error\"><strong>Ended early:</strong> {}</p>", escape(e));
    }
    for u in &c.unconfirmed {
        let _ = write!(
            out,
            "<h3>Unconfirmed: <code>{}</code></h3><p>{} hit(s); no case reproduced it on a fresh server ({} attempts): not a finding.</p><p>{}</p>",
            escape(&u.bucket.0),
            u.hits,
            u.attempts,
            escape(&u.outcome.describe())
        );
    }
}

fn finding(out: &mut String, r: &Reproducer, command: &str) {
    let _ = write!(
        out,
        "<div class=\"finding\"><h3>Finding: <code>{}</code></h3><p>{}</p>\
         <p>Case {} of seed <code>{}</code>, found after {:.1} s; {} further hit(s); replayed {} of {} on fresh servers. Detector: {}.</p>",
        escape(&r.bucket.0),
        escape(&r.outcome.describe()),
        r.index,
        r.seed,
        r.found_after_ms as f64 / 1000.0,
        r.hits,
        r.replays.matched,
        r.replays.of,
        r.outcome.detector()
    );
    let _ = write!(
        out,
        "<p>Minimised to {} write(s), {} bytes{}:</p>",
        r.case.writes.len(),
        r.case.len(),
        if r.repeat > 1 { format!(", sent {} times", r.repeat) } else { String::new() }
    );
    for (i, w) in r.case.writes.iter().enumerate() {
        let _ = write!(out, "<pre class=\"hex\" title=\"write {i}\">{}</pre>", hex_dump(w));
    }
    if let Some(output) = r.outcome.output() {
        if !output.is_empty() {
            let text: Vec<String> = output.iter().rev().take(20).rev().cloned().collect();
            let _ = write!(
                out,
                "<details><summary>The server's last output</summary><pre>{}</pre></details>",
                escape(&text.join("\n"))
            );
        }
    }
    if !command.is_empty() {
        let _ = write!(out, "<p>Replay:</p><pre class=\"replay\">{}</pre>", escape(command));
    }
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_controls_are_text() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a\"b&c"), "a&quot;b&amp;c");
        assert_eq!(escape("nul\u{0}esc\u{1b}"), "nul\\x00esc\\x1B");
    }

    #[test]
    fn hex_dumps_escape_their_ascii_column() {
        let d = hex_dump(b"<a href=x>\x00\xff");
        assert!(d.starts_with("00000000  3c 61"), "{d}");
        assert!(d.contains("&lt;a href=x&gt;.."), "{d}");
        assert!(!d.contains('<'), "{d}");
    }
}
