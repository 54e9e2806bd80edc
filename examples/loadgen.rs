//! Open-loop load generator for `bench/ingest.sh`, `bench/faults.sh` and `bench/growth.sh`: sends fresh
//! GenericReports at a fixed rate (latency is measured from each request's scheduled start, so a slow
//! server cannot hide its queueing), and writes every acknowledged report id to a file so a script can
//! check that the database holds each one. With `--interval-seconds` it also summarises each interval
//! of the run on a line of its own, for runs long enough to drift.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --rate 1000 --seconds 30

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use uuid::Uuid;

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of the service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Requests per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Size of the instance-id pool reports are drawn from.
    #[arg(long, default_value_t = 100_000)]
    instances: u128,
    /// Share of PMM-sized bodies; the rest are agent-sized.
    #[arg(long, default_value_t = 0.2)]
    pmm_share: f64,
    /// Most requests in flight at once (the generator's own bound, so it stops by itself).
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// Where to write the ids of acknowledged (200) reports, one per line.
    #[arg(long)]
    acknowledged_out: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Also print a LOADGEN_INTERVAL line for every this many seconds of the run (0: none). A request
    /// counts in the interval it was scheduled in, not the one its answer came in, so a slow interval
    /// shows its own queueing instead of passing it on to the next one.
    #[arg(long, default_value_t = 0)]
    interval_seconds: u64,
    /// Threads the generator runs on. It shares the machine with the service and PostgreSQL in
    /// the benchmarks: one thread keeps its own scheduling out of the way of theirs.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where to write every request, one per line: when it was scheduled (Unix time, ms), its
    /// latency (ms) and its status (0: no answer). To line a stall up with what the service, the
    /// database and the host were doing at that moment.
    #[arg(long)]
    requests_out: Option<PathBuf>,
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).expect("fixture readable"))
        .expect("fixture is JSON")
}

/// A cheap, seedable generator: good enough to spread instances and sizes, no extra dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The parts of a body that vary per request, as placeholders in the serialised template.
const SLOTS: [&str; 5] = [
    "@@REPORT_ID@@",
    "@@INSTANCE_ID@@",
    "@@CREATE_TIME@@",
    "@@PMM_MINOR@@",
    "@@PILLAR_PATCH@@",
];

/// A body cut once around the parts that vary, so that a request costs a few string copies
/// instead of cloning and serialising a JSON tree: at a few thousand requests per second that
/// saves the generator a good share of the CPU it shares with the service on a small machine.
struct Template {
    pieces: Vec<String>,
    slots: Vec<usize>,
}

impl Template {
    fn compile(fixture: &Value) -> Self {
        let mut body = fixture.clone();
        let report = &mut body["reports"][0];
        report["id"] = SLOTS[0].into();
        report["instanceId"] = SLOTS[1].into();
        report["createTime"] = SLOTS[2].into();
        for metric in report["metrics"].as_array_mut().into_iter().flatten() {
            match metric["key"].as_str() {
                Some("PMMServerVersion") => metric["value"] = format!("3.{}.0", SLOTS[3]).into(),
                Some("pillar_version") => metric["value"] = format!("8.0.{}", SLOTS[4]).into(),
                _ => {}
            }
        }
        let text = body.to_string();
        let (mut pieces, mut slots, mut rest) = (Vec::new(), Vec::new(), text.as_str());
        while let Some((at, slot)) = SLOTS
            .iter()
            .enumerate()
            .filter_map(|(slot, marker)| rest.find(marker).map(|at| (at, slot)))
            .min()
        {
            pieces.push(rest[..at].to_owned());
            slots.push(slot);
            rest = &rest[at + SLOTS[slot].len()..];
        }
        pieces.push(rest.to_owned());
        Self { pieces, slots }
    }

    fn fill(&self, values: &[String; 5]) -> String {
        let mut body =
            String::with_capacity(self.pieces.iter().map(String::len).sum::<usize>() + 128);
        for (piece, &slot) in self.pieces.iter().zip(&self.slots) {
            body.push_str(piece);
            body.push_str(&values[slot]);
        }
        body.push_str(self.pieces.last().expect("a template has a last piece"));
        body
    }
}

fn build_body(template: &Template, random: &mut SplitMix, args: &Args) -> (Uuid, String) {
    let instance = u128::from(random.next()) % args.instances.max(1);
    let report_id = Uuid::new_v4();
    let mut minor = (instance % 10) as u64;
    if random.unit() < 0.03 {
        minor += 1;
    }
    let values = [
        report_id.to_string(),
        Uuid::from_u128(0x4000_8000_0000_0000_0000 | instance).to_string(),
        chrono::Utc::now().to_rfc3339(),
        minor.to_string(),
        (30 + minor).to_string(),
    ];
    (report_id, template.fill(&values))
}

/// What the requests of the whole run, or of one interval, came to.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    skipped: u64,
}

impl Tally {
    /// The result line's fields after its label; sorts the latencies.
    fn fields(&mut self) -> String {
        self.latencies_us.sort_unstable();
        let latencies = &self.latencies_us;
        let percentile = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let index =
                ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index] as f64 / 1000.0
        };
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}:{count}"))
            .collect();
        let sent: u64 = self.statuses.values().sum::<u64>() + self.errors;
        format!(
            "sent={sent} ok={} statuses={} errors={} skipped={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            self.statuses.get(&200).copied().unwrap_or(0),
            statuses.join(","),
            self.errors,
            self.skipped,
            percentile(0.50),
            percentile(0.99),
            latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        )
    }
}

#[derive(Default)]
struct Outcome {
    run: Tally,
    /// By interval index; empty without `--interval-seconds`.
    intervals: BTreeMap<u64, Tally>,
    acknowledged: Vec<Uuid>,
    /// Scheduled (since the start), latency and status of every request; only with `--requests-out`.
    requests: Vec<(Duration, u64, u16)>,
}

impl Outcome {
    /// The run's tally, and the interval's when intervals are asked for.
    fn tallies(&mut self, interval: Option<u64>) -> impl Iterator<Item = &mut Tally> {
        let interval = interval.map(|index| self.intervals.entry(index).or_default());
        std::iter::once(&mut self.run).chain(interval)
    }
}

fn main() {
    let args = Arc::new(Args::parse());
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.threads);
        builder
    }
    .enable_all()
    .build()
    .expect("runtime builds");
    runtime.block_on(run(args));
}

async fn run(args: Arc<Args>) {
    let agent = Template::compile(&fixture("telemetry-agent-ps.json"));
    let pmm = Template::compile(&fixture("pmm-generic-report-1.json"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .pool_max_idle_per_host(args.max_in_flight)
        // The service closes a keep-alive connection idle for HEADER_READ_TIMEOUT_SECS (10 s by
        // default); a client that keeps it longer races that close and loses a request now and then.
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("client builds");
    let url = format!("{}/v1/telemetry/GenericReport", args.url);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    let mut random = SplitMix(u64::from(std::process::id()) << 32 | 0x5eed);

    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let end = start + Duration::from_secs(args.seconds);
    let interval_of = |scheduled: Instant| {
        (args.interval_seconds > 0)
            .then(|| scheduled.saturating_duration_since(start).as_secs() / args.interval_seconds)
    };
    let keep_requests = args.requests_out.is_some();
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        let scheduled = ticker.tick().await.into_std();
        let interval = interval_of(scheduled);
        let template = if random.unit() < args.pmm_share {
            &pmm
        } else {
            &agent
        };
        let (report_id, body) = build_body(template, &mut random, &args);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            for tally in outcome.lock().await.tallies(interval) {
                tally.skipped += 1;
            }
            continue;
        };
        let (client, url, outcome) = (client.clone(), url.clone(), outcome.clone());
        tasks.spawn(async move {
            let result = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let elapsed = scheduled.elapsed().as_micros() as u64;
            let mut outcome = outcome.lock().await;
            let status = match result {
                Ok(response) => Some(response.status().as_u16()),
                Err(error) => {
                    eprintln!("request failed: {error:?}");
                    None
                }
            };
            if status == Some(200) {
                outcome.acknowledged.push(report_id);
            }
            if keep_requests {
                let since_start = scheduled.saturating_duration_since(start);
                outcome
                    .requests
                    .push((since_start, elapsed, status.unwrap_or(0)));
            }
            for tally in outcome.tallies(interval) {
                match status {
                    Some(status) => *tally.statuses.entry(status).or_default() += 1,
                    None => tally.errors += 1,
                }
                if status == Some(200) {
                    tally.latencies_us.push(elapsed);
                }
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}

    let mut outcome = outcome.lock().await;
    let seconds = args.interval_seconds;
    for (index, tally) in &mut outcome.intervals {
        println!(
            "LOADGEN_INTERVAL index={index} from_s={} to_s={} {}",
            index * seconds,
            ((index + 1) * seconds).min(args.seconds),
            tally.fields()
        );
    }
    println!("LOADGEN_RESULT {}", outcome.run.fields());
    if let Some(path) = &args.acknowledged_out {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("output file"));
        for id in &outcome.acknowledged {
            writeln!(file, "{id}").expect("write acknowledged id");
        }
    }
    if let Some(path) = &args.requests_out {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("output file"));
        for (since_start, latency_us, status) in &outcome.requests {
            let scheduled_ms = (start_unix + *since_start).as_secs_f64() * 1000.0;
            let latency_ms = *latency_us as f64 / 1000.0;
            writeln!(file, "{scheduled_ms:.1} {latency_ms:.2} {status}").expect("write request");
        }
    }
}
