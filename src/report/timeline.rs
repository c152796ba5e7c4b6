//! The timeline of one case, `out/<case>/timeline.svg`: the case as a story on the mock clock. One lane each for
//! the agent's lifecycle, the fault windows, IMDS, Entra, the tokens (issue → expiry, refresh point), the DCR and
//! the scrapes; each exchange a mark coloured by its answer, resends linked to the write they repeat, a
//! `Retry-After` drawn as the wait it asked for, and every exchange a failing check names as evidence ringed in red.
//! A lane with more than [`MARK_LIMIT`] marks (a 3-minute load case) shows counts per time slice instead.
//!
//! Hand-written SVG: no script, no external font or style, every text escaped — it is inlined in `report.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::bundle::AgentRecord;
use super::markup::{escape, request_numbers};
use crate::cloud::FaultConfig;
use crate::cloud::recorder::{Exchange, IssuedToken, Service};
use crate::expect::Finding;
use crate::scrape::Scrape;

/// Above this many marks a lane is aggregated into [`SLICES`] time slices.
pub const MARK_LIMIT: usize = 300;
/// Time slices of an aggregated lane.
const SLICES: usize = 120;
const WIDTH: f64 = 1200.0;
/// Lane labels live left of this.
const LEFT: f64 = 120.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 34.0;
const AXIS: f64 = 36.0;
/// Rows of the token lane; more tokens share rows.
const TOKEN_ROWS: usize = 6;

/// Everything the timeline shows, as the runner holds it when it writes the bundle.
#[derive(Debug, Clone, Copy)]
pub struct Story<'a> {
    /// Every exchange, in arrival order.
    pub exchanges: &'a [Exchange],
    /// Every token the mock issued.
    pub tokens: &'a [IssuedToken],
    /// When the target served each scrape.
    pub scrapes: &'a [Scrape],
    /// The fault plan.
    pub faults: &'a FaultConfig,
    /// The verdict's findings: failing ones mark their evidence.
    pub findings: &'a [Finding],
    /// How the agent ended.
    pub agent: &'a AgentRecord,
    /// Mock clock when the agent was started.
    pub agent_started: Duration,
    /// Mock clock when the case was decided (or hit its deadline).
    pub decided: Duration,
    /// Unix time in ms at mock-clock zero: the scrape log is stamped in Unix ms.
    pub epoch_ms: i64,
}

/// What an answer meant, for colour and legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Ok,
    Redirect,
    Throttled,
    Refused,
    ServerError,
    Unanswered,
}

impl Answer {
    const ALL: [Answer; 6] =
        [Answer::Ok, Answer::Redirect, Answer::Throttled, Answer::Refused, Answer::ServerError, Answer::Unanswered];

    fn of(e: &Exchange) -> Answer {
        if e.fault.as_ref().is_some_and(|f| f.unanswered) {
            return Answer::Unanswered;
        }
        match e.status {
            200..=299 => Answer::Ok,
            300..=399 => Answer::Redirect,
            429 => Answer::Throttled,
            400..=499 => Answer::Refused,
            500..=599 => Answer::ServerError,
            _ => Answer::Unanswered,
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Answer::Ok => "#2e7d32",
            Answer::Redirect => "#1565c0",
            Answer::Throttled => "#ef6c00",
            Answer::Refused => "#6a1b9a",
            Answer::ServerError => "#c62828",
            Answer::Unanswered => "#616161",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Answer::Ok => "2xx",
            Answer::Redirect => "3xx",
            Answer::Throttled => "429",
            Answer::Refused => "4xx",
            Answer::ServerError => "5xx",
            Answer::Unanswered => "no answer",
        }
    }
}

/// The drawing: output, time scale, and the next lane's top.
struct Canvas {
    out: String,
    end: f64,
    y: f64,
}

impl Canvas {
    fn x(&self, t: Duration) -> f64 {
        LEFT + (t.as_secs_f64() / self.end).min(1.0) * (WIDTH - LEFT - RIGHT)
    }

    /// Starts a lane of `height`: its band and label. Returns its top.
    fn lane(&mut self, label: &str, height: f64) -> f64 {
        let top = self.y;
        let _ = write!(
            self.out,
            r##"<g class="lane"><rect x="0" y="{top:.1}" width="{WIDTH}" height="{height:.1}" fill="#f7f7f7" stroke="#e0e0e0"/><text x="8" y="{:.1}" class="label">{}</text></g>"##,
            top + height / 2.0 + 4.0,
            escape(label)
        );
        self.y += height;
        top
    }
}

/// What failing findings name as evidence: every exchange they cite, with the checks citing it, and whether it is
/// the last one a finding cites (usually the offending one: "retried:", "resent:"), which gets the label.
#[derive(Debug, Default)]
struct Marked {
    checks: BTreeMap<usize, Vec<String>>,
    labelled: BTreeMap<usize, Vec<String>>,
}

impl Marked {
    fn of(findings: &[Finding]) -> Marked {
        let mut marked = Marked::default();
        for f in findings.iter().filter(|f| f.is_failure()) {
            let check = f.check.to_string();
            let seqs: Vec<usize> = f.evidence.iter().flat_map(|line| request_numbers(line)).collect();
            for seq in &seqs {
                let checks = marked.checks.entry(*seq).or_default();
                if !checks.contains(&check) {
                    checks.push(check.clone());
                }
            }
            if let Some(last) = seqs.last() {
                marked.labelled.entry(*last).or_default().push(check);
            }
        }
        marked
    }

    fn contains(&self, seq: usize) -> bool {
        self.checks.contains_key(&seq)
    }
}

/// The timeline as a standalone SVG document.
pub fn render(story: &Story<'_>) -> String {
    let last = story.exchanges.iter().map(|e| e.at).max().unwrap_or_default();
    let last_scrape = story.scrapes.iter().map(|s| scrape_at(story, s)).max().unwrap_or_default();
    // A Retry-After's whole wait is shown, so a resend inside it stands out.
    let waits = story.exchanges.iter().filter_map(|e| Some(e.at + e.fault.as_ref()?.retry_after.as_ref()?.wait)).max();
    let end = [last, last_scrape, story.decided, story.agent_started, waits.unwrap_or_default()]
        .into_iter()
        .max()
        .unwrap_or_default()
        .as_secs_f64()
        .max(1.0)
        * 1.02;
    let mut c = Canvas { out: String::new(), end, y: AXIS };
    let marked = Marked::of(story.findings);
    agent_lane(&mut c, story);
    fault_lane(&mut c, story);
    for (service, label) in [(Service::Imds, "IMDS"), (Service::Entra, "Entra")] {
        let mine: Vec<&Exchange> = story.exchanges.iter().filter(|e| e.service == service).collect();
        exchange_lane(&mut c, label, &mine, &marked);
    }
    token_lane(&mut c, story);
    let writes: Vec<&Exchange> = story.exchanges.iter().filter(|e| e.service == Service::Dcr).collect();
    let dcr_top = c.y;
    let aggregated = exchange_lane(&mut c, "DCR", &writes, &marked);
    if !aggregated {
        retry_after_waits(&mut c, &writes, dcr_top);
        resend_links(&mut c, &writes, dcr_top, &marked);
    }
    let other: Vec<&Exchange> = story
        .exchanges
        .iter()
        .filter(|e| !matches!(e.service, Service::Imds | Service::Entra | Service::Dcr))
        .collect();
    if !other.is_empty() {
        exchange_lane(&mut c, "other hosts", &other, &marked);
    }
    scrape_lane(&mut c, story);
    let body = std::mem::take(&mut c.out);
    let height = c.y + 30.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="azrw-timeline" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"##
    );
    svg.push_str(r##"<style>.label{font-weight:bold;fill:#333}.note{fill:#333;font-size:10px}.evidence-label{fill:#d50000;font-size:10px;font-weight:bold}</style>"##);
    svg.push_str(&axis(&c));
    svg.push_str(&body);
    svg.push_str(&legend(c.y + 18.0));
    svg.push_str("</svg>\n");
    svg
}

/// Unix time in ms at mock-clock zero, from the mock clock now.
pub fn epoch_ms(mock_now: Duration) -> i64 {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    unix.as_millis() as i64 - mock_now.as_millis() as i64
}

fn scrape_at(story: &Story<'_>, s: &Scrape) -> Duration {
    Duration::from_millis(s.served_at_ms.saturating_sub(story.epoch_ms).max(0) as u64)
}

/// Seconds on top: a tick every 1, 2 or 5 × 10ⁿ s, about ten of them.
fn axis(c: &Canvas) -> String {
    let raw = c.end / 10.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    let mut out = format!(
        r##"<text x="8" y="14" class="note">mock clock (s since the mock cloud started)</text><line x1="{LEFT}" y1="{AXIS}" x2="{:.1}" y2="{AXIS}" stroke="#999"/>"##,
        WIDTH - RIGHT
    );
    let mut t = 0.0;
    while t <= c.end {
        let x = c.x(Duration::from_secs_f64(t));
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ccc"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="note">{}</text>"##,
            AXIS - 4.0,
            c.y,
            AXIS - 8.0,
            trim_float(t)
        );
        t += step;
    }
    out
}

fn trim_float(t: f64) -> String {
    let s = format!("{t:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn legend(y: f64) -> String {
    let mut out = String::new();
    let mut x = LEFT;
    for a in Answer::ALL {
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{y:.1}" class="note">{}</text>"##,
            y - 9.0,
            a.colour(),
            x + 14.0,
            a.name()
        );
        x += 80.0;
    }
    let _ = write!(
        out,
        r##"<circle cx="{:.1}" cy="{:.1}" r="6" fill="none" stroke="#d50000" stroke-width="2"/><text x="{:.1}" y="{y:.1}" class="note">evidence of a failing check</text><path d="M{:.1},{:.1} q15,-12 30,0" fill="none" stroke="#1a237e"/><text x="{:.1}" y="{y:.1}" class="note">resend of the same samples</text><rect x="{:.1}" y="{:.1}" width="30" height="8" fill="#ffcc80" opacity="0.7"/><text x="{:.1}" y="{y:.1}" class="note">Retry-After wait</text>"##,
        x + 6.0,
        y - 4.0,
        x + 16.0,
        x + 190.0,
        y - 2.0,
        x + 225.0,
        x + 390.0,
        y - 9.0,
        x + 425.0
    );
    out
}

fn agent_lane(c: &mut Canvas, story: &Story<'_>) {
    let top = c.lane("agent", LANE);
    let (x0, x1) = (c.x(story.agent_started), c.x(story.decided));
    let mid = top + LANE / 2.0;
    let _ = write!(
        c.out,
        r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="8" fill="#90a4ae"><title>agent started at +{:.2}s, case decided at +{:.2}s</title></rect><text x="{x0:.1}" y="{:.1}" class="note">start +{:.1}s</text>"##,
        mid - 4.0,
        (x1 - x0).max(1.0),
        story.agent_started.as_secs_f64(),
        story.decided.as_secs_f64(),
        top + 10.0,
        story.agent_started.as_secs_f64()
    );
    if let Some(first) = story.exchanges.iter().find(|e| e.service == Service::Dcr && Answer::of(e) == Answer::Ok) {
        let x = c.x(first.at);
        let _ = write!(
            c.out,
            r##"<path d="M{x:.1},{:.1} l-5,-8 h10 z" fill="#2e7d32"><title>first accepted write: request #{} at +{:.2}s</title></path>"##,
            mid + 4.0,
            first.seq,
            first.at.as_secs_f64()
        );
    }
    let end_note = match &story.agent.exited {
        Some((code, error)) => format!(
            "exited (code {}){}",
            code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        None if !story.agent.was_ready => "never ready".to_owned(),
        None => format!("decided +{:.1}s", story.decided.as_secs_f64()),
    };
    let colour = if story.agent.exited.is_some() || !story.agent.was_ready { "#d50000" } else { "#333" };
    let _ = write!(
        c.out,
        r##"<line x1="{x1:.1}" y1="{:.1}" x2="{x1:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="note" fill="{colour}">{}</text>"##,
        top + 2.0,
        top + LANE - 2.0,
        x1 - 3.0,
        top + LANE - 4.0,
        escape(&truncate(&end_note, 90))
    );
}

/// One row per fault rule: its window on the mock clock, or (a counted rule) the span of the exchanges it answered.
fn fault_lane(c: &mut Canvas, story: &Story<'_>) {
    let rules = &story.faults.rules;
    let revoke = story.faults.tokens.revoke_at;
    let rows = rules.len() + usize::from(revoke.is_some());
    let top = c.lane("faults", LANE.max(rows as f64 * 14.0 + 6.0));
    if rows == 0 {
        let _ = write!(c.out, r##"<text x="{LEFT}" y="{:.1}" class="note">none</text>"##, top + LANE / 2.0 + 4.0);
        return;
    }
    let end = Duration::from_secs_f64(c.end);
    for (i, r) in rules.iter().enumerate() {
        let y = top + 4.0 + i as f64 * 14.0;
        let answered: Vec<&Exchange> =
            story.exchanges.iter().filter(|e| e.fault.as_ref().is_some_and(|f| f.rule == r.name)).collect();
        let windowed = r.rule.from.is_some() || r.rule.until.is_some();
        let span = if windowed {
            Some((r.rule.from.unwrap_or_default(), r.rule.until.unwrap_or(end)))
        } else {
            answered.first().zip(answered.last()).map(|(a, b)| (a.at, b.at))
        };
        let what = r
            .rule
            .status
            .map_or_else(|| if r.rule.reset { "reset".to_owned() } else { "fault".to_owned() }, |s| s.to_string());
        let label = format!("{} ({what}, answered {})", r.name, answered.len());
        let Some((from, until)) = span else {
            let _ = write!(
                c.out,
                r##"<text x="{LEFT}" y="{:.1}" class="note">{} — never answered</text>"##,
                y + 9.0,
                escape(&r.name)
            );
            continue;
        };
        let (x0, x1) = (c.x(from), c.x(until));
        let _ = write!(
            c.out,
            r##"<g class="fault"><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="11" fill="#ef9a9a" opacity="0.8"><title>{} from +{:.2}s to +{:.2}s</title></rect><text x="{:.1}" y="{:.1}" class="note">{}</text></g>"##,
            (x1 - x0).max(2.0),
            escape(&label),
            from.as_secs_f64(),
            until.as_secs_f64(),
            x0 + 3.0,
            y + 9.0,
            escape(&label)
        );
    }
    if let Some(at) = revoke {
        let (x, y) = (c.x(at), top + 4.0 + rules.len() as f64 * 14.0);
        let _ = write!(
            c.out,
            r##"<text x="{x:.1}" y="{:.1}" class="note" fill="#c62828">✕ tokens revoked +{:.1}s</text>"##,
            y + 9.0,
            at.as_secs_f64()
        );
    }
}

/// One mark per exchange, or counts per slice above [`MARK_LIMIT`]; evidence is ringed either way. Returns whether
/// the lane was aggregated.
fn exchange_lane(c: &mut Canvas, label: &str, list: &[&Exchange], marked: &Marked) -> bool {
    // Room under the marks for the evidence labels.
    let height = if list.iter().any(|e| marked.labelled.contains_key(&e.seq)) { LANE + 10.0 } else { LANE };
    let top = c.lane(label, height);
    let aggregated = list.len() > MARK_LIMIT;
    if list.is_empty() {
        let _ = write!(c.out, r##"<text x="{LEFT}" y="{:.1}" class="note">none</text>"##, top + LANE / 2.0 + 4.0);
    } else if aggregated {
        let slices = slice_counts(c, list.iter().map(|e| (e.at, Answer::of(e))));
        draw_slices(c, top, &slices, &format!("{} exchanges", list.len()));
    } else {
        for e in list {
            let x = c.x(e.at);
            let a = Answer::of(e);
            let fill = if a == Answer::Unanswered { "none" } else { a.colour() };
            let class = if marked.contains(e.seq) { "exchange evidence" } else { "exchange" };
            let _ = write!(
                c.out,
                r##"<g id="ex-{}" class="{class}"><title>{}</title><rect x="{:.1}" y="{:.1}" width="3" height="16" fill="{fill}" stroke="{}"/></g>"##,
                e.seq,
                escape(&describe(e)),
                x - 1.5,
                top + 9.0,
                a.colour()
            );
        }
    }
    for e in list.iter().filter(|e| marked.contains(e.seq)) {
        let x = c.x(e.at);
        let _ = write!(
            c.out,
            r##"<g class="evidence-mark" data-seq="{}"><title>evidence of {}: {}</title><circle cx="{x:.1}" cy="{:.1}" r="10" fill="none" stroke="#d50000" stroke-width="2"/>"##,
            e.seq,
            escape(&marked.checks[&e.seq].join(", ")),
            escape(&describe(e)),
            top + 17.0,
        );
        if let Some(checks) = marked.labelled.get(&e.seq) {
            let _ = write!(
                c.out,
                r##"<text x="{:.1}" y="{:.1}" class="evidence-label">{} (#{})</text>"##,
                x + 12.0,
                top + 38.0,
                escape(&checks.join(", ")),
                e.seq
            );
        }
        c.out.push_str("</g>");
    }
    aggregated
}

/// `#7 POST host/path → 503 [fault x] at +4.23s`.
fn describe(e: &Exchange) -> String {
    let answer = if Answer::of(e) == Answer::Unanswered { "no answer".to_owned() } else { e.status.to_string() };
    let fault = e.fault.as_ref().map(|f| format!(" [fault {}]", f.rule)).unwrap_or_default();
    let retry = e.fault.as_ref().and_then(|f| f.retry_after.as_ref()).map(|r| format!(" Retry-After: {}", r.header));
    format!(
        "#{} {} {}{} → {answer}{fault}{} at +{:.2}s",
        e.seq,
        e.method,
        e.host,
        truncate(&e.target, 80),
        retry.unwrap_or_default(),
        e.at.as_secs_f64()
    )
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// Counts per time slice and answer.
fn slice_counts(c: &Canvas, items: impl Iterator<Item = (Duration, Answer)>) -> Vec<BTreeMap<Answer, usize>> {
    let mut slices = vec![BTreeMap::new(); SLICES];
    for (at, a) in items {
        let i = ((at.as_secs_f64() / c.end) * SLICES as f64) as usize;
        *slices[i.min(SLICES - 1)].entry(a).or_insert(0) += 1;
    }
    slices
}

/// Stacked bars, height by count relative to the busiest slice.
fn draw_slices(c: &mut Canvas, top: f64, slices: &[BTreeMap<Answer, usize>], what: &str) {
    let max = slices.iter().map(|s| s.values().sum::<usize>()).max().unwrap_or(1).max(1) as f64;
    let width = (WIDTH - LEFT - RIGHT) / SLICES as f64;
    let _ = write!(
        c.out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" class="note">{} in {SLICES} slices, busiest {max}</text>"##,
        WIDTH - RIGHT,
        top + 9.0,
        escape(what)
    );
    for (i, slice) in slices.iter().enumerate() {
        let x = LEFT + i as f64 * width;
        let from = c.end * i as f64 / SLICES as f64;
        let counts: Vec<String> = slice.iter().map(|(a, n)| format!("{n} × {}", a.name())).collect();
        let mut y = top + LANE - 2.0;
        for (a, n) in slice {
            let h = *n as f64 / max * (LANE - 14.0);
            y -= h;
            let _ = write!(
                c.out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>+{from:.1}s: {}</title></rect>"##,
                (width - 0.5).max(0.5),
                a.colour(),
                counts.join(", ")
            );
        }
    }
}

/// The wait each `Retry-After` asked for, from the answer on: a resend inside it came early.
fn retry_after_waits(c: &mut Canvas, writes: &[&Exchange], top: f64) {
    for w in writes {
        let Some(r) = w.fault.as_ref().and_then(|f| f.retry_after.as_ref()) else { continue };
        let (x0, x1) = (c.x(w.at), c.x(w.at + r.wait));
        let _ = write!(
            c.out,
            r##"<rect class="retry-after" x="{x0:.1}" y="{:.1}" width="{:.1}" height="6" fill="#ffb74d" opacity="0.8"><title>#{} asked to wait: Retry-After: {} (until +{:.2}s)</title></rect>"##,
            top + 2.0,
            (x1 - x0).max(1.0),
            w.seq,
            escape(&r.header),
            (w.at + r.wait).as_secs_f64()
        );
        let _ = write!(
            c.out,
            r##"<text x="{x1:.1}" y="{:.1}" text-anchor="end" class="note">Retry-After: {} ends ▸</text>"##,
            top + 16.0,
            escape(&r.header)
        );
    }
}

/// An arc from each write to the next write of the same samples.
fn resend_links(c: &mut Canvas, writes: &[&Exchange], top: f64, marked: &Marked) {
    let mut previous: BTreeMap<Vec<(String, i64)>, &Exchange> = BTreeMap::new();
    for w in writes {
        let key = crate::expect::batch_key(w);
        if key.is_empty() {
            continue;
        }
        if let Some(a) = previous.insert(key, w) {
            let (x0, x1) = (c.x(a.at), c.x(w.at));
            let colour = if marked.contains(w.seq) { "#d50000" } else { "#1a237e" };
            let _ = write!(
                c.out,
                r##"<path class="resend" data-of="{}" data-seq="{}" d="M{x0:.1},{:.1} Q{:.1},{:.1} {x1:.1},{:.1}" fill="none" stroke="{colour}" stroke-width="1.2"><title>#{} resends the samples of #{} after {:.2}s</title></path>"##,
                a.seq,
                w.seq,
                top + 9.0,
                (x0 + x1) / 2.0,
                top - 4.0,
                top + 9.0,
                w.seq,
                a.seq,
                w.at.saturating_sub(a.at).as_secs_f64()
            );
        }
    }
}

fn scrape_lane(c: &mut Canvas, story: &Story<'_>) {
    let top = c.lane("scrapes", LANE);
    let times: Vec<Duration> = story.scrapes.iter().map(|s| scrape_at(story, s)).collect();
    if times.is_empty() {
        let _ = write!(c.out, r##"<text x="{LEFT}" y="{:.1}" class="note">none</text>"##, top + LANE / 2.0 + 4.0);
    } else if times.len() > MARK_LIMIT {
        let slices = slice_counts(c, times.iter().map(|t| (*t, Answer::Ok)));
        draw_slices(c, top, &slices, &format!("{} scrapes", times.len()));
    } else {
        for (s, t) in story.scrapes.iter().zip(&times) {
            let x = c.x(*t);
            let _ = write!(
                c.out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#455a64"><title>scrape #{} served at +{:.2}s ({})</title></line>"##,
                top + 10.0,
                top + 24.0,
                s.n,
                t.as_secs_f64(),
                escape(&format!("{:?}", s.format))
            );
        }
    }
}

fn token_lane(c: &mut Canvas, story: &Story<'_>) {
    let rows = story.tokens.len().clamp(1, TOKEN_ROWS);
    let top = c.lane("tokens", LANE.max(rows as f64 * 12.0 + 8.0));
    if story.tokens.is_empty() {
        let _ =
            write!(c.out, r##"<text x="{LEFT}" y="{:.1}" class="note">none issued</text>"##, top + LANE / 2.0 + 4.0);
        return;
    }
    let end = Duration::from_secs_f64(c.end);
    for (i, t) in story.tokens.iter().enumerate() {
        let y = top + 5.0 + (i % TOKEN_ROWS) as f64 * 12.0;
        let (x0, x1) = (c.x(t.issued_at), c.x(t.expires_at.min(end)));
        let beyond = if t.expires_at > end { " (beyond the case)" } else { "" };
        let _ = write!(
            c.out,
            r##"<g class="token"><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="8" fill="#80cbc4"><title>{}: issued +{:.2}s, expires +{:.2}s{beyond}</title></rect><text x="{:.1}" y="{:.1}" class="note">{}</text>"##,
            (x1 - x0).max(1.0),
            t.id,
            t.issued_at.as_secs_f64(),
            t.expires_at.as_secs_f64(),
            x0 + 2.0,
            y + 7.5,
            t.id
        );
        let half = t.issued_at + (t.expires_at.saturating_sub(t.issued_at)) / 2;
        if half < end {
            let x = c.x(half);
            let _ = write!(
                c.out,
                r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#00695c" stroke-dasharray="2,2"><title>half-life +{:.2}s: no refresh is expected before</title></line>"##,
                y + 8.0,
                half.as_secs_f64()
            );
        }
        let next = story.tokens.iter().find(|n| n.issuer == t.issuer && n.issued_at > t.issued_at);
        if let Some(n) = next.filter(|n| n.issued_at < t.expires_at) {
            let x = c.x(n.issued_at);
            let _ = write!(
                c.out,
                r##"<line class="refresh" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-width="2"><title>refreshed: {} issued at +{:.2}s</title></line>"##,
                y - 1.0,
                y + 9.0,
                n.id,
                n.issued_at.as_secs_f64()
            );
        }
        c.out.push_str("</g>");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Check;
    use crate::cloud::fault::NamedRule;
    use crate::cloud::recorder::{Detail, Principal, TokenId, TokenRequest, WriteAuth};
    use crate::cloud::{FaultMark, RetryAfter};
    use crate::remote_write::{DecodedWrite, Sample, Series};

    fn exchange(seq: usize, ms: u64, service: Service, status: u16, detail: Detail) -> Exchange {
        Exchange {
            seq,
            at: Duration::from_millis(ms),
            service,
            host: "dce-1.westeurope-1.metrics.ingest.monitor.azure.com".into(),
            tls: true,
            method: "POST".into(),
            target: "/dataCollectionRules/dcr-1/streams/Microsoft-PrometheusMetrics/api/v1/write".into(),
            headers: Vec::new(),
            status,
            detail,
            fault: None,
            not_kept: None,
        }
    }

    /// A write of `up` at `ts`, authorised by token #1.
    pub(crate) fn write(seq: usize, ms: u64, status: u16, ts: i64) -> Exchange {
        let series = Series {
            labels: vec![("__name__".into(), "up".into())],
            samples: vec![Sample { timestamp: ts, value: 1.0 }],
            histograms: Vec::new(),
            exemplars: Vec::new(),
        };
        let body = DecodedWrite { version: None, series: vec![series], metadata: Vec::new(), uncompressed_len: 10 };
        let auth = WriteAuth::Token { id: TokenId(1), problem: None };
        exchange(seq, ms, Service::Dcr, status, Detail::Write { auth, body: Ok(body) })
    }

    /// IMDS token at 0.2s; write #2 refused 503 with Retry-After 3 at 1s, resent (#3) 0.1s later and accepted;
    /// a new batch (#4) at 2.5s.
    pub(crate) fn early_resend() -> (Vec<Exchange>, Vec<IssuedToken>, FaultConfig, Vec<Finding>) {
        let request = TokenRequest::Imds {
            api_version: Some("2018-02-01".into()),
            resource: Some("https://monitor.azure.com".into()),
            client_id: None,
            metadata_header: Some("true".into()),
        };
        let mut imds =
            exchange(1, 200, Service::Imds, 200, Detail::Token { request, issued: Some(TokenId(1)), error: None });
        imds.method = "GET".into();
        imds.host = "169.254.169.254".into();
        imds.target = "/metadata/identity/oauth2/token?api-version=2018-02-01".into();
        let mut refused = write(2, 1000, 503, 1_000);
        refused.fault = Some(FaultMark {
            rule: "dcr-503".into(),
            retry_after: Some(RetryAfter { header: "3".into(), wait: Duration::from_secs(3) }),
            unanswered: false,
            location: None,
            certificate: None,
        });
        let exchanges = vec![imds, refused, write(3, 1100, 200, 1_000), write(4, 2500, 200, 2_000)];
        let token = IssuedToken {
            id: TokenId(1),
            issuer: Service::Imds,
            tenant: "t".into(),
            principal: Principal::SystemAssigned { object_id: "o".into() },
            audience: "https://monitor.azure.com".into(),
            issued_at: Duration::from_millis(200),
            expires_at: Duration::from_secs(3600),
        };
        let rule = serde_saphyr::from_str("{service: dcr, times: 1, status: 503, retry_after: 3s}").unwrap();
        let faults = FaultConfig { rules: vec![NamedRule { name: "dcr-503".into(), rule }], ..FaultConfig::default() };
        let finding = Finding::fail(Check::RetryRetryAfter, "prometheus 3.5.1 retried 0.10s after Retry-After 3s")
            .with_evidence("answered: request #2 POST https://dce/write at +1.00s → 503 [fault dcr-503]")
            .with_evidence("retried: request #3 POST https://dce/write at +1.10s → 200 after 0.10s");
        (exchanges, vec![token], faults, vec![Finding::pass(Check::AuthEndpoint, "IMDS"), finding])
    }

    fn story<'a>(
        exchanges: &'a [Exchange],
        tokens: &'a [IssuedToken],
        faults: &'a FaultConfig,
        findings: &'a [Finding],
        agent: &'a AgentRecord,
    ) -> Story<'a> {
        Story {
            exchanges,
            tokens,
            scrapes: &[],
            faults,
            findings,
            agent,
            agent_started: Duration::from_millis(50),
            decided: Duration::from_millis(2600),
            epoch_ms: 0,
        }
    }

    #[test]
    fn a_small_case_renders_as_its_snapshot() {
        let (exchanges, tokens, faults, findings) = early_resend();
        let agent = AgentRecord { was_ready: true, exited: None };
        let scrapes = [Scrape::text(1, 900), Scrape::text(2, 1900)];
        let story = Story { scrapes: &scrapes, ..story(&exchanges, &tokens, &faults, &findings, &agent) };
        insta::assert_snapshot!("timeline_early_resend", render(&story));
    }

    #[test]
    fn the_failing_checks_evidence_is_ringed_and_the_resend_linked() {
        let (exchanges, tokens, faults, findings) = early_resend();
        let agent = AgentRecord { was_ready: true, exited: None };
        let svg = render(&story(&exchanges, &tokens, &faults, &findings, &agent));
        assert!(svg.contains(r#"<g id="ex-3" class="exchange evidence">"#), "{svg}");
        assert!(svg.contains(r#"<g id="ex-2" class="exchange evidence">"#), "{svg}");
        assert!(svg.contains(r#"<g id="ex-4" class="exchange">"#), "{svg}");
        assert!(svg.contains(r#"<g class="evidence-mark" data-seq="3">"#), "{svg}");
        assert!(svg.contains("retry.retry-after (#3)"), "{svg}");
        assert!(svg.contains(r#"class="resend" data-of="2" data-seq="3""#), "{svg}");
        assert!(!svg.contains(r#"data-seq="4""#), "a new batch is no resend: {svg}");
        assert!(svg.contains("Retry-After: 3 (until +4.00s)"), "{svg}");

        // The same case passing: nothing is ringed.
        let passing = [findings[0].clone()];
        let svg = render(&story(&exchanges, &tokens, &faults, &passing, &agent));
        assert!(!svg.contains("evidence-mark"), "{svg}");
    }

    #[test]
    fn labels_from_the_wire_are_escaped() {
        let (mut exchanges, tokens, faults, findings) = early_resend();
        exchanges[3].target = "/write?<script>alert(1)</script>".into();
        let agent = AgentRecord { was_ready: false, exited: Some((Some(1), Some("<b>bad</b>".into()))) };
        let svg = render(&story(&exchanges, &tokens, &faults, &findings, &agent));
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("exited (code 1): &lt;b&gt;bad"), "{svg}");
    }

    #[test]
    fn a_long_load_case_is_aggregated() {
        let exchanges: Vec<Exchange> =
            (1..=2000).map(|i| write(i, i as u64 * 90, if i % 10 == 0 { 429 } else { 200 }, i as i64)).collect();
        let faults = FaultConfig::default();
        let agent = AgentRecord { was_ready: true, exited: None };
        let svg = render(&Story { decided: Duration::from_secs(180), ..story(&exchanges, &[], &faults, &[], &agent) });
        assert!(svg.contains("2000 exchanges in 120 slices"), "aggregated");
        assert!(!svg.contains(r#"id="ex-"#), "no per-exchange marks");
        assert!(svg.contains("× 429"), "the throttled share shows");
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
    }
}
