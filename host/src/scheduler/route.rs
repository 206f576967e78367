//! Where units come from and where what they find goes: the units of
//! each target and emitted subject ([`Dispatch`]: which plugins take a
//! subject, less what earlier runs did), and the scan's books
//! ([`ScanState`]: what was queued, the ports of names given as
//! `NAME:PORT`, what lies outside the scope, and every record, written to
//! the sink and the journal together).

use super::batch::Ready;
use super::input::{self, Start};
use super::summary::{PluginStats, Summary};
use super::{ScanError, ScanSpec};
use crate::engine::registry::Registry;
use crate::engine::{CallError, Event, PluginId};
use crate::metrics::Metrics;
use crate::model::{PluginInfo, Subject, SubjectKey};
use crate::output::{Record, Sink};
use crate::scope::Scope;
use crate::store::{DoneUnits, Journal, Resumed};
use crate::targets::{Endpoint, PortSpec};
use indicatif::ProgressBar;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One plugin on one subject. The plugin is named, not held: it is looked
/// up when the unit starts, so a plugin swapped in meanwhile is the one
/// that runs, and a removed one does not.
pub(super) struct Unit {
    pub plugin: String,
    pub subject: Subject,
    /// The ports of a `host:port` target, instead of the scan's.
    pub ports: Option<Arc<[(u16, u16)]>>,
    /// Its identity in the result store's journal ([`unit_key`]).
    pub key: Arc<str>,
    /// What it weighs against the scan's budget of work in flight: the
    /// ports an address is swept on, 1 for any other subject.
    pub weight: usize,
    /// The place its subject holds among the derived subjects waiting to
    /// run (shared by the subject's units; freed when the last starts).
    pub place: Option<Place>,
}

/// A derived subject's place in the queue ([`crate::engine::ScanContext::derived`]).
pub(super) type Place = Arc<tokio::sync::OwnedSemaphorePermit>;

/// What identifies a unit across runs of a scan: the plugin, the subject's
/// key and the ports of a `host:port` target. Stable text, stored in the
/// journal of completed units.
fn unit_key(plugin: &str, subject: &Subject, ports: Option<&[(u16, u16)]>) -> String {
    let kind = match subject.kind() {
        crate::model::SubjectKind::Host => "host",
        crate::model::SubjectKind::Address => "address",
        crate::model::SubjectKind::Service => "service",
    };
    let key = format!("{plugin} {kind} {}", subject.key());
    match ports {
        Some(ports) => {
            let ports: Vec<String> = ports.iter().map(crate::model::range_text).collect();
            format!("{key} ports {}", ports.join(","))
        }
        None => key,
    }
}

/// The statistics of `plugin` in `summary`, looked up before they are
/// inserted: the name is copied once per plugin, not once per unit or
/// finding.
fn plugin_stats<'s>(summary: &'s mut Summary, plugin: &str) -> &'s mut PluginStats {
    if !summary.plugins.contains_key(plugin) {
        summary
            .plugins
            .insert(plugin.to_string(), PluginStats::default());
    }
    summary.plugins.get_mut(plugin).expect("inserted above")
}

/// A unit started and not ended yet.
struct Running {
    /// Its journal key.
    key: Arc<str>,
    subject: Subject,
    /// Its share of [`ScanState::weight`].
    weight: usize,
}

/// How a unit ended.
struct Outcome {
    /// Its number, which its events carry.
    unit: u64,
    plugin: Arc<PluginId>,
    result: Result<(), CallError>,
    elapsed: Duration,
}

/// Port ranges shared by the units of one target.
type PortList = Arc<[(u16, u16)]>;

/// Which plugins a subject goes to: the selected plugins in use whose
/// filter takes it, less the units earlier runs of the scan completed.
struct Dispatch<'a> {
    registry: &'a Registry,
    selection: Option<&'a [String]>,
    /// Units an earlier run completed (by [`unit_key`]): not run again.
    done: DoneUnits,
    /// The scan's ports (`-p`): those of a unit keyed without ports.
    scan_ports: &'a [(u16, u16)],
}

/// The units of derived subjects queued so far, by plugin and subject.
type SeenSet = HashSet<(String, SubjectKey)>;

/// How a route uses the units queued so far.
enum Seen<'s> {
    /// Skip those, and remember these (derived subjects: few).
    Remember(&'s mut SeenSet),
    /// Skip those, remember nothing (a target name: a million names from
    /// `-i` are told apart by the scope already, and a derived subject
    /// that is a target name is skipped in `handle`).
    Check(&'s SeenSet),
}

impl Dispatch<'_> {
    /// Whether the plugin `info` describes is selected and its filter
    /// takes `subject`.
    fn takes(&self, info: &PluginInfo, subject: &Subject) -> bool {
        self.selection
            .is_none_or(|names| names.contains(&info.name))
            && info.consumes.matches(subject)
    }

    /// Whether a selected plugin in use takes `subject` (as [`Self::route`]
    /// would, before what was done or queued already).
    fn consumes(&self, subject: &Subject) -> bool {
        self.registry
            .active()
            .iter()
            .any(|active| self.takes(&active.plugin.info, subject))
    }

    /// Queue a unit for every selected plugin in use whose filter matches.
    /// `seen` keeps a plugin from scanning the same subject twice. Whether
    /// any such plugin consumes the subject at all (queued now, or before).
    fn route(
        &self,
        subject: &Subject,
        ports: Option<&Arc<[(u16, u16)]>>,
        ready: &mut Ready,
        mut seen: Option<Seen<'_>>,
        place: Option<&Place>,
        summary: &mut Summary,
    ) -> bool {
        let mut consumed = false;
        for active in self.registry.active().iter() {
            let info = &active.plugin.info;
            if !self.takes(info, subject) {
                continue;
            }
            consumed = true;
            let repeated = match &mut seen {
                Some(Seen::Remember(seen)) => !seen.insert((info.name.clone(), subject.key())),
                Some(Seen::Check(seen)) => seen.contains(&(info.name.clone(), subject.key())),
                None => false,
            };
            if repeated {
                continue;
            }
            let Some((ports, key)) = self.left(&info.name, subject, ports) else {
                summary.skipped += 1;
                continue;
            };
            let weight = match subject {
                Subject::Address { .. } => ports_len(ports.as_deref().unwrap_or(self.scan_ports)),
                _ => 1,
            };
            ready.push(Unit {
                plugin: info.name.clone(),
                subject: subject.clone(),
                ports,
                key: key.into(),
                weight,
                place: place.cloned(),
            });
        }
        consumed
    }

    /// What is left of `plugin` on `subject` and `ports` after earlier
    /// runs: the ports and key of the unit to run, or `None` when they
    /// did it all. An address's ports count, not how they were split into
    /// units: those of a name given both bare and as `NAME:PORT` in `-i`
    /// are split by when each line arrived, which a resume does not
    /// repeat.
    fn left(
        &self,
        plugin: &str,
        subject: &Subject,
        ports: Option<&Arc<[(u16, u16)]>>,
    ) -> Option<(Option<PortList>, String)> {
        let key = unit_key(plugin, subject, ports.map(|p| &p[..]));
        if self.done.is_empty() {
            return Some((ports.cloned(), key));
        }
        if self.done.contains(&key) {
            return None;
        }
        if !matches!(subject, Subject::Address { .. }) {
            return Some((ports.cloned(), key));
        }
        let base = unit_key(plugin, subject, None);
        let mut covered: Vec<(u16, u16)> = Vec::new();
        if ports.is_some() && self.done.contains(&base) {
            covered.extend_from_slice(self.scan_ports);
        }
        for more in self.done.extensions(&base, " ports ") {
            // Keys are written by `unit_key`; one that does not parse
            // covers nothing (its ports run again).
            if let Ok(done) = more.parse::<PortSpec>() {
                covered.extend_from_slice(done.ranges());
            }
        }
        if covered.is_empty() {
            return Some((ports.cloned(), key));
        }
        let wanted = ports.map_or(self.scan_ports, |p| &p[..]);
        let left = ports_minus(wanted, &covered);
        if left.is_empty() {
            None
        } else if ports_minus(wanted, &left).is_empty() {
            Some((ports.cloned(), key))
        } else {
            let key = unit_key(plugin, subject, Some(&left));
            Some((Some(left.into()), key))
        }
    }
}

/// What the addresses of a name given as `host:port` are scanned on: the
/// ports it was given with, and the scan's ports too when the name was also
/// given bare. Names given only bare have no pin (the scan's ports apply),
/// so a file of a million names keeps none.
#[derive(Debug, Default)]
struct Pin {
    /// The ports of its `host:port` targets.
    ports: Vec<u16>,
    /// The ports its addresses have been routed with so far.
    routed: Vec<(u16, u16)>,
}

/// Pins by name.
type Pins = HashMap<String, Pin>;

/// The ports of `pin`, with the scan's `scan_ports` when the name was given
/// bare too: merged, ascending ranges.
fn pin_ports(pin: &Pin, bare: bool, scan_ports: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut ports = PortBits::default();
    for &p in &pin.ports {
        ports.insert(p, p);
    }
    if bare {
        for &(a, b) in scan_ports {
            ports.insert(a, b);
        }
    }
    ports.ranges()
}

/// The pins of the names given as `host:port` on the command line
/// (see [`Pin`]).
fn pins(spec: &ScanSpec) -> Pins {
    let mut pins = Pins::new();
    for (host, port) in &spec.one_port {
        if let Endpoint::Name(name) = host {
            pins.entry(name.clone()).or_default().ports.push(*port);
        }
    }
    let bare: HashSet<&str> = spec.hosts.iter().map(String::as_str).collect();
    for (name, pin) in &mut pins {
        pin.routed = pin_ports(pin, bare.contains(name.as_str()), spec.ports.ranges());
    }
    pins
}

/// A set of ports as bits (8 KiB): unions and differences of port lists
/// without range arithmetic. Used only when a pin changes.
struct PortBits(Box<[u64; 1024]>);

impl Default for PortBits {
    fn default() -> Self {
        PortBits(Box::new([0; 1024]))
    }
}

impl PortBits {
    fn insert(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.0[usize::from(p / 64)] |= 1 << (p % 64);
        }
    }

    fn remove(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.0[usize::from(p / 64)] &= !(1 << (p % 64));
        }
    }

    fn contains(&self, p: u16) -> bool {
        self.0[usize::from(p / 64)] & (1 << (p % 64)) != 0
    }

    fn ranges(&self) -> Vec<(u16, u16)> {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for p in 1..=u16::MAX {
            if !self.contains(p) {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.1 + 1 == p => last.1 = p,
                _ => ranges.push((p, p)),
            }
        }
        ranges
    }
}

/// How many ports `ranges` hold.
fn ports_len(ranges: &[(u16, u16)]) -> usize {
    ranges.iter().map(|&(a, b)| usize::from(b - a) + 1).sum()
}

/// The ports of `new` that are not in `old`.
fn ports_minus(new: &[(u16, u16)], old: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut bits = PortBits::default();
    for &(a, b) in new {
        bits.insert(a, b);
    }
    for &(a, b) in old {
        bits.remove(a, b);
    }
    bits.ranges()
}

/// The scan's books: the units ready to start, what was already queued,
/// what lies outside the scope, the ports of names given as `NAME:PORT`,
/// the units running, and the statistics. Every record goes through
/// [`ScanState::write`], to the sink and the journal together.
pub(super) struct ScanState<'r> {
    dispatch: Dispatch<'r>,
    scope: &'r Scope,
    /// Units already queued, keyed so none runs twice.
    seen: SeenSet,
    /// Out-of-scope subjects already reported, so each is written once.
    outside: HashSet<SubjectKey>,
    /// The scan's ports (`-p`), for pins of names also given bare.
    scan_ports: &'r [(u16, u16)],
    /// Out-of-scope subjects found by each running unit, by the number its
    /// events carry: written as one record when the unit ends.
    outside_found: HashMap<u64, (Arc<PluginId>, Vec<Subject>)>,
    /// Units waiting to run.
    pub ready: Ready,
    /// Ports of `host:port` targets on names, for the addresses the names
    /// resolve to.
    pins: Pins,
    /// The addresses derived for each name so far that a plugin consumes,
    /// so that a pin that arrives later (a `NAME:PORT` line after the name
    /// was given bare and resolved) tops them up. About 90 bytes a name,
    /// beside the units `seen` keeps for the same addresses.
    addresses: HashMap<Box<str>, Box<[IpAddr]>>,
    /// The result store's journal, if the scan has one.
    journal: Option<&'r Journal>,
    /// Each running unit, by the number its events carry.
    inflight: HashMap<u64, Running>,
    /// The weight of the running units ([`Unit::weight`]).
    pub weight: usize,
    /// Units queued so far that the progress bar's length counts.
    counted: u64,
    /// What the scan did so far.
    pub summary: Summary,
    /// The process's metrics, told of every unit and finding.
    metrics: Arc<Metrics>,
}

impl<'r> ScanState<'r> {
    /// The books of a new run of `spec`: `resumed` holds what earlier runs
    /// did (nothing for a new scan); what their completed units emitted is
    /// routed again, to units of its own, done or not.
    pub fn new(
        spec: &'r ScanSpec,
        registry: &'r Registry,
        scope: &'r Scope,
        journal: Option<&'r Journal>,
        resumed: Resumed,
        metrics: Arc<Metrics>,
    ) -> Self {
        let scan_ports = spec.ports.ranges();
        let mut state = ScanState {
            dispatch: Dispatch {
                registry,
                selection: spec.plugins.as_deref(),
                done: resumed.done,
                scan_ports,
            },
            scope,
            seen: HashSet::new(),
            outside: resumed.outside.into_iter().collect(),
            scan_ports,
            outside_found: HashMap::new(),
            ready: Ready::default(),
            pins: pins(spec),
            addresses: HashMap::new(),
            journal,
            inflight: HashMap::new(),
            weight: 0,
            counted: 0,
            summary: Summary::default(),
            metrics,
        };
        for subject in resumed.emitted {
            scope.restore(&subject);
            state.derive(subject, None);
        }
        state
    }

    /// Queue the units of a target. `counted`: the target is in the
    /// progress bar's length already (a command-line target; not a line of
    /// `-i`), where its units now take its place.
    pub fn start(&mut self, start: Start, counted: bool, progress: &ProgressBar) {
        self.summary.targets += 1;
        if let Subject::Host(name) = &start.subject {
            self.pin(name, start.pin);
        }
        let ports: Option<Arc<[(u16, u16)]>> = start.ports.map(Arc::from);
        // A plugin that finds a target again (a certificate's SAN, an
        // address of the sweep) does not start it over: that is checked in
        // `handle`, against the scope, which knows every target already. A
        // name derived before its `-i` line came is not started again.
        let seen = matches!(start.subject, Subject::Host(_)).then_some(Seen::Check(&self.seen));
        self.dispatch.route(
            &start.subject,
            ports.as_ref(),
            &mut self.ready,
            seen,
            None,
            &mut self.summary,
        );
        self.count_units(progress, u64::from(counted));
    }

    /// Count the units queued since the last call in the progress bar, in
    /// place of `replaced` (0 or 1) target it counted: the bar counts units
    /// finished out of units known, so it reaches its end when the scan
    /// does. A target of no unit (nothing consumes it, or a resume did it)
    /// is finished work; a target of one unit, the most common, changes
    /// nothing (the bar's length takes a lock, its position does not).
    fn count_units(&mut self, progress: &ProgressBar, replaced: u64) {
        let queued = self.ready.queued();
        let added = queued - self.counted;
        self.counted = queued;
        if added < replaced {
            progress.inc(replaced - added);
        } else if added > replaced {
            progress.inc_length(added - replaced);
        }
    }

    /// Take one line's worth of `-i` input.
    pub fn take(&mut self, item: input::Item, progress: &ProgressBar) {
        match item {
            Ok(start) => self.start(start, false, progress),
            Err(e) => {
                tracing::warn!("input {e}; skipped");
                self.summary.bad_lines += 1;
                if self.summary.input_errors.len() < 10 {
                    self.summary.input_errors.push(e.to_string());
                }
            }
        }
    }

    /// Write `record` of the running unit numbered `unit`: to the sink,
    /// and to the journal under the unit's key (a unit no longer running
    /// has none).
    fn write(&self, sink: &mut dyn Sink, unit: u64, record: &Record) -> Result<(), ScanError> {
        // Serialized once, for the output and the store alike.
        let json = serde_json::to_string(record).map_err(std::io::Error::from)?;
        sink.write_json(record, &json)?;
        if let (Some(journal), Some(running)) = (self.journal, self.inflight.get(&unit)) {
            journal.record_json(&running.key, record, json)?;
        }
        Ok(())
    }

    /// Handle every event already sent; whether there was any.
    pub fn drain(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
        sink: &mut dyn Sink,
        progress: &ProgressBar,
    ) -> Result<bool, ScanError> {
        let mut any = false;
        while let Ok(event) = events.try_recv() {
            any = true;
            self.handle(event, sink, progress)?;
        }
        Ok(any)
    }

    /// Write a finding; route an emitted subject, or report it once when it
    /// is outside the scope. Both are journaled under the unit that sent
    /// them; an in-scope subject no plugin takes is neither routed nor
    /// journaled.
    pub fn handle(
        &mut self,
        event: Event,
        sink: &mut dyn Sink,
        progress: &ProgressBar,
    ) -> Result<(), ScanError> {
        match event {
            Event::Done {
                unit,
                plugin,
                result,
                elapsed,
            } => {
                let outcome = Outcome {
                    unit,
                    plugin,
                    result,
                    elapsed,
                };
                self.finish(outcome, sink, progress)?;
            }
            Event::Finding {
                unit,
                plugin,
                finding,
            } => {
                self.summary.findings += 1;
                self.metrics
                    .finding(&plugin.name, &finding.kind, finding.severity);
                plugin_stats(&mut self.summary, &plugin.name).findings += 1;
                self.write(sink, unit, &Record::finding(&plugin, finding))?;
            }
            Event::Subject {
                unit,
                plugin,
                subject,
                permit,
            } => {
                let in_scope = match &subject {
                    Subject::Host(name) => self.scope.contains_name(name),
                    other => other.ip().is_some_and(|ip| self.scope.contains(ip)),
                };
                let journal = self
                    .journal
                    .zip(self.inflight.get(&unit).map(|running| &running.key));
                if !in_scope {
                    self.summary.out_of_scope += 1;
                    if self.outside.insert(subject.key()) {
                        tracing::info!(plugin = %plugin.name, %subject, "subject outside the scan's scope; reported, not scanned");
                        if let Some((journal, key)) = journal {
                            journal.emitted(key, &subject, true)?;
                        }
                        // Written as one record when the unit ends.
                        self.outside_found
                            .entry(unit)
                            .or_insert_with(|| (plugin.clone(), Vec::new()))
                            .1
                            .push(subject);
                    }
                    return Ok(());
                }
                // A target is started already: a bare address the user
                // listed by the target sweep, a name by its own start.
                if self.is_started(&subject) {
                    return Ok(());
                }
                // A subject no plugin of the scan takes starts nothing, and
                // is not journaled either: a resume would route it to none
                // (an address of a DNS-only scan, a third of its rows). A
                // plugin loaded later does not get it in this run either,
                // since subjects are routed as they come.
                if !self.dispatch.consumes(&subject) {
                    return Ok(());
                }
                if let Some((journal, key)) = journal {
                    journal.emitted(key, &subject, false)?;
                }
                self.derive(subject, permit.map(Arc::new));
                self.count_units(progress, 0);
            }
        }
        Ok(())
    }

    /// Whether `subject` is a target, started as one: a bare address the
    /// user listed (the target sweep visits it), or a name given as a
    /// target (on the command line, or in a line of `-i` already read).
    fn is_started(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Address { ip, host: None } => self.scope.is_target(*ip),
            Subject::Host(name) => self.scope.is_given_name(name),
            _ => false,
        }
    }

    /// Take in that `unit` starts, numbered `id`: its subject, to run.
    pub fn started(&mut self, id: u64, unit: Unit) -> Subject {
        let Unit {
            subject,
            key,
            weight,
            place,
            ..
        } = unit;
        // Started, the unit no longer waits: its subject's place is freed
        // once its last unit starts.
        drop(place);
        self.summary.units += 1;
        self.weight += weight;
        self.inflight.insert(
            id,
            Running {
                key,
                subject: subject.clone(),
                weight,
            },
        );
        subject
    }

    /// Take in that the running unit `id` will not end: its plugin is gone,
    /// or its call was lost to a host panic. It is not marked done (a
    /// resume runs it again); what it found outside the scope is written
    /// at the end.
    pub fn abandon(&mut self, id: u64, progress: &ProgressBar) {
        if let Some(running) = self.inflight.get_mut(&id) {
            self.weight -= running.weight;
            running.weight = 0;
            progress.inc(1);
        }
    }

    /// Close the books of a unit that ended: its out-of-scope record, its
    /// statistics, its error if it failed, and its mark in the journal
    /// (after all its records, so a resume skips it only when they are all
    /// stored). Its events come before its end, so they are handled.
    fn finish(
        &mut self,
        outcome: Outcome,
        sink: &mut dyn Sink,
        progress: &ProgressBar,
    ) -> Result<(), ScanError> {
        let Some(running) = self.inflight.get(&outcome.unit) else {
            return Ok(());
        };
        if let Some((_, outside)) = self.outside_found.remove(&outcome.unit) {
            let record = Record::out_of_scope(&outcome.plugin, &running.subject, &outside);
            self.write(sink, outcome.unit, &record)?;
        }
        let stats = plugin_stats(&mut self.summary, &outcome.plugin.name);
        stats.units += 1;
        stats.time += outcome.elapsed;
        self.metrics
            .unit_done(&outcome.plugin.name, &outcome.result, outcome.elapsed);
        if let Err(e) = &outcome.result {
            let subject = self.inflight[&outcome.unit].subject.clone();
            stats.errors += 1;
            tracing::info!(plugin = %outcome.plugin.name, %subject, "unit failed: {e}");
            self.summary.errors += 1;
            let record = Record::error(&outcome.plugin, &subject, e.to_string());
            self.write(sink, outcome.unit, &record)?;
        }
        if let Some(running) = self.inflight.remove(&outcome.unit) {
            self.weight -= running.weight;
            if let Some(journal) = self.journal {
                journal.done(&running.key, outcome.result.is_err())?;
            }
        }
        progress.inc(1);
        // The message is text made anew: not for a bar nobody sees.
        if !progress.is_hidden() {
            progress.set_message(format!(
                "{} unit(s), {} finding(s), {} error(s)",
                self.summary.units, self.summary.findings, self.summary.errors
            ));
        }
        Ok(())
    }

    /// Write the out-of-scope records of units that did not finish (cut
    /// short by Ctrl-C, or lost to a host panic): nothing found is dropped.
    /// They are not done, so a resume runs them again.
    pub fn write_outside_of_unfinished(&mut self, sink: &mut dyn Sink) -> Result<(), ScanError> {
        let mut left: Vec<_> = self.outside_found.drain().collect();
        left.sort_by_key(|(unit, _)| *unit);
        for (unit, (plugin, outside)) in left {
            let Some(running) = self.inflight.get(&unit) else {
                continue;
            };
            let record = Record::out_of_scope(&plugin, &running.subject, &outside);
            self.write(sink, unit, &record)?;
        }
        Ok(())
    }

    /// Take in that `name` was given with `port` (or bare, `None`). When
    /// that widens the ports its addresses are scanned on, the addresses
    /// already derived for it are routed again on the new ports only: a
    /// line `a.test` after `a.test:443` adds the scan's ports to a.test's
    /// addresses, even when its DNS unit has already run.
    fn pin(&mut self, name: &str, port: Option<u16>) {
        let addresses = self.addresses.get(name);
        let pin = match (port, self.pins.get_mut(name)) {
            (None, None) => return,
            (_, Some(pin)) => pin,
            (Some(_), None) => self.pins.entry(name.to_string()).or_insert_with(|| Pin {
                ports: Vec::new(),
                // Addresses derived before the name had a pin were routed
                // with the scan's ports.
                routed: match addresses {
                    Some(_) => self.scan_ports.to_vec(),
                    None => Vec::new(),
                },
            }),
        };
        if let Some(port) = port
            && !pin.ports.contains(&port)
        {
            pin.ports.push(port);
        }
        let bare = port.is_none() || self.scope.given_bare(name);
        let ports = pin_ports(pin, bare, self.scan_ports);
        let added = ports_minus(&ports, &pin.routed);
        if added.is_empty() {
            return;
        }
        pin.routed = ports;
        let added: Arc<[(u16, u16)]> = added.into();
        for &ip in addresses.into_iter().flatten() {
            let subject = Subject::Address {
                ip,
                host: Some(name.to_string()),
            };
            // Not deduplicated against `seen`: these ports are new to it.
            self.dispatch.route(
                &subject,
                Some(&added),
                &mut self.ready,
                None,
                None,
                &mut self.summary,
            );
        }
    }

    /// Queue the units of an in-scope subject a plugin emitted (one the
    /// target sweep does not visit: emitted subjects are journaled only
    /// then, so those a resume routes again are such subjects too).
    /// `place`: the subject's place among the derived subjects waiting,
    /// held by its units until they start.
    pub fn derive(&mut self, subject: Subject, place: Option<Place>) {
        // The addresses of a name given as host:port get its ports.
        let ports = match &subject {
            Subject::Address {
                host: Some(name), ..
            } => self
                .pins
                .get(name)
                .map(|pin| Arc::from(pin.routed.as_slice())),
            _ => None,
        };
        let consumed = self.dispatch.route(
            &subject,
            ports.as_ref(),
            &mut self.ready,
            Some(Seen::Remember(&mut self.seen)),
            place.as_ref(),
            &mut self.summary,
        );
        // Remembered for a later pin only when some plugin scans it: with
        // none (a DNS-only scan), a pin would route it to none either.
        if let (
            true,
            Subject::Address {
                host: Some(name),
                ip,
            },
        ) = (consumed, &subject)
        {
            // Rarely more than a few: a boxed slice, not a Vec's spare
            // capacity.
            match self.addresses.get_mut(name.as_str()) {
                Some(known) if known.contains(ip) => {}
                Some(known) => *known = known.iter().copied().chain([*ip]).collect(),
                None => {
                    self.addresses.insert(name.as_str().into(), Box::new([*ip]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_add_the_scans_ports_when_the_name_was_also_given_bare() {
        let pin = Pin {
            ports: vec![443, 8443],
            ..Pin::default()
        };
        let scan = [(1, 100), (443, 443)];
        assert_eq!(pin_ports(&pin, false, &scan), [(443, 443), (8443, 8443)]);
        assert_eq!(
            pin_ports(&pin, true, &scan),
            [(1, 100), (443, 443), (8443, 8443)]
        );
        assert_eq!(
            ports_minus(
                &[(1, 100), (443, 443), (8443, 8443)],
                &[(443, 443), (50, 60)]
            ),
            [(1, 49), (61, 100), (8443, 8443)]
        );
        assert_eq!(ports_minus(&[(1, 65535)], &[(1, 65535)]), []);
        assert_eq!(ports_minus(&[(65535, 65535)], &[]), [(65535, 65535)]);
    }

    /// Journal keys are stable text: a resumed scan finds its units by them.
    #[test]
    fn unit_keys_name_plugin_subject_and_ports() {
        let address = Subject::Address {
            ip: "127.0.0.1".parse().unwrap(),
            host: Some("www.test".into()),
        };
        assert_eq!(unit_key("port", &address, None), "port address 127.0.0.1");
        assert_eq!(
            unit_key("port", &address, Some(&[(80, 80), (8000, 8100)])),
            "port address 127.0.0.1 ports 80,8000-8100"
        );
        let service = Subject::Service(crate::model::Service {
            ip: "::1".parse().unwrap(),
            port: 443,
            host: None,
            name: Some("https".into()),
            banner: None,
            tls: false,
        });
        assert_eq!(unit_key("tls", &service, None), "tls service [::1]:443");
        assert_eq!(
            unit_key("dns", &Subject::Host("WWW.Test".into()), None),
            "dns host www.test"
        );
    }
}
