//! `bench-e2e`: end-to-end latency, fan-out throughput, CPU per delivery and RSS of the
//! local stack, Socket.IO 4 and the bare broadcast server, under one workload and one
//! load client. Each server runs as its own process (its /proc figures are its own);
//! this process is the load client. Writes tables (markdown, CSV, JSON) and a PNG of
//! latency against subscribers to `--out`. `bench/run.sh` runs it.

use anyhow::Context;
use clap::Parser;
use realtime_bench::e2e::{self, Level, Options, Report, ServerProc, Target};
use realtime_bench::plot::{self, Chart, Series};
use realtime_bench::stats::ms;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "End-to-end latency and fan-out: the local stack vs Socket.IO 4 vs a bare broadcast server")]
struct Args {
    /// Servers to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "realtime,socketio,bare,bare-tuned")]
    targets: Vec<Target>,
    /// Subscriber counts on one channel, ascending.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000,10000")]
    levels: Vec<usize>,
    /// Sequential messages per level...
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// ...capped at this many deliveries per level...
    #[arg(long, default_value_t = 300_000)]
    max_deliveries: usize,
    /// ...but never fewer messages than this.
    #[arg(long, default_value_t = 20)]
    min_messages: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Messages of the throughput phase at the last level (0 skips it).
    #[arg(long, default_value_t = 60)]
    burst: usize,
    #[arg(long, default_value_t = 4)]
    burst_inflight: usize,
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 10)]
    message_timeout_secs: u64,
    /// Time allowed to each server's run, connects included.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
    /// Worker threads of the load client.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// The local stack's release binary (default: next to this one).
    #[arg(long)]
    realtime_bin: Option<PathBuf>,
    /// The bare server's binary (default: next to this one).
    #[arg(long)]
    bare_bin: Option<PathBuf>,
    #[arg(long, default_value = "node")]
    node: String,
    #[arg(long, default_value = "bench/peers/socketio-server.js")]
    socketio_server: PathBuf,
    /// Measure an already running server instead (one target, loopback only).
    #[arg(long)]
    url: Option<String>,
    /// Its pid, for CPU and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Only redraw the plot from an `e2e.json` of an earlier run (into `--out`).
    #[arg(long)]
    replot: Option<PathBuf>,
    /// Where the tables, the JSON and the plot go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nofile = realtime_bench::raise_nofile();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args, nofile))
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

async fn run(args: Args, nofile: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    if let Some(json) = &args.replot {
        let reports: Vec<Report> = serde_json::from_str(&std::fs::read_to_string(json)?)?;
        let machine = std::fs::read_to_string(args.out.join("e2e.md"))
            .ok()
            .and_then(|md| {
                md.lines().find_map(|l| {
                    l.strip_prefix("Measured ")
                        .map(|m| m.split(". Command").next().unwrap_or(m).to_string())
                })
            })
            .unwrap_or_default();
        let png = args.out.join("latency.png");
        plot_latency(&reports, &machine, &png)?;
        println!("wrote {}", png.display());
        return Ok(());
    }
    let logs = std::env::temp_dir().join(format!("realtime-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let top = args.levels.iter().copied().max().unwrap_or(0);
    if nofile < (top as u64 + 200) {
        eprintln!("warning: open files limit {nofile} is below {top} sockets; raise it with `ulimit -n`");
    }
    let machine = machine();
    println!("{machine}");
    let mut reports = Vec::new();
    for &target in &args.targets {
        let mut opts = Options::new(target, "");
        opts.levels = args.levels.clone();
        opts.messages = args.messages;
        opts.max_deliveries = args.max_deliveries;
        opts.min_messages = args.min_messages;
        opts.warmup = args.warmup;
        opts.burst = args.burst;
        opts.burst_inflight = args.burst_inflight;
        opts.connect_concurrency = args.connect_concurrency;
        opts.message_timeout = Duration::from_secs(args.message_timeout_secs);
        opts.deadline = Duration::from_secs(args.deadline_secs);
        let mut server = None;
        if let Some(url) = &args.url {
            opts.base = url.clone();
            opts.server_pid = args.server_pid;
        } else {
            let port = e2e::free_port()?;
            let log = logs.join(format!("{target:?}.log").to_lowercase());
            let mut proc = start_server(&args, target, port, &logs, &log)?;
            if let Err(e) = proc.ready(Duration::from_secs(30)).await {
                anyhow::bail!("{} did not start: {e:#} (log: {})", target.name(), log.display());
            }
            opts.base = proc.base.clone();
            opts.server_pid = Some(proc.pid);
            server = Some(proc);
        }
        println!("== {} ({}), levels {:?}", target.name(), opts.base, opts.levels);
        let started = std::time::Instant::now();
        let report = e2e::run(&opts).await.with_context(|| format!("measuring {}", target.name()))?;
        for l in &report.levels {
            println!(
                "  {:>6} subscribers: {:>4} msgs, p50 {} ms, p99 {} ms, max {} ms, missing {}, cpu/delivery {} us, rss {} MB",
                l.subscribers,
                l.messages,
                ms(l.latency.p50_us),
                ms(l.latency.p99_us),
                ms(l.latency.max_us),
                l.missing,
                opt(l.cpu_us_per_delivery, 2),
                mb(l.rss_peak_kb)
            );
        }
        if let Some(b) = &report.burst {
            println!(
                "  throughput at {}: {:.0} deliveries/s ({} msgs, {} in flight), cpu/delivery {} us",
                b.subscribers,
                b.deliveries_per_sec,
                b.messages,
                b.inflight,
                opt(b.cpu_us_per_delivery, 2)
            );
        }
        for n in &report.notes {
            println!("  note: {n}");
        }
        println!("  ({:.1} s)", started.elapsed().as_secs_f64());
        if let Some(s) = server {
            s.stop();
        }
        reports.push(report);
        if args.url.is_some() {
            break;
        }
    }
    write_results(&args.out, &machine, &reports, &args)?;
    let _ = std::fs::remove_dir_all(&logs);
    Ok(())
}

fn start_server(args: &Args, target: Target, port: u16, logs: &Path, log: &Path) -> anyhow::Result<ServerProc> {
    let addr = format!("127.0.0.1:{port}");
    match target {
        Target::Realtime => {
            let bin = args.realtime_bin.clone().unwrap_or_else(|| sibling("realtime-local"));
            let data = logs.join("realtime-data");
            let _ = std::fs::remove_dir_all(&data);
            ServerProc::spawn(
                &bin.to_string_lossy(),
                &[
                    "--addr".into(),
                    addr,
                    "--data-dir".into(),
                    data.to_string_lossy().into_owned(),
                    // Every benchmark socket is the one user's.
                    "--max-connections-per-user".into(),
                    "100000".into(),
                    "--max-connections".into(),
                    "100000".into(),
                ],
                &[],
                port,
                log,
            )
        }
        Target::Bare | Target::BareTuned => {
            let bin = args.bare_bin.clone().unwrap_or_else(|| sibling("bench-bare"));
            let mut a = vec!["--addr".to_string(), addr];
            if target == Target::BareTuned {
                a.extend(["--read-buffer-size".into(), "4096".into()]);
            }
            ServerProc::spawn(&bin.to_string_lossy(), &a, &[], port, log)
        }
        Target::Socketio => ServerProc::spawn(
            &args.node,
            &[args.socketio_server.to_string_lossy().into_owned()],
            &[("PORT", port.to_string())],
            port,
            log,
        ),
    }
}

fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "{} UTC; {cores} cores ({cpu}); load average {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".into()
    }
}

fn find(reports: &[Report], t: Target) -> Option<&Report> {
    reports.iter().find(|r| r.target == t)
}

fn level(r: &Report, n: usize) -> Option<&Level> {
    r.levels.iter().find(|l| l.subscribers == n)
}

fn write_results(out: &Path, machine: &str, reports: &[Report], args: &Args) -> anyhow::Result<()> {
    let mut md = String::new();
    let mut csv = String::from(
        "server,subscribers,messages,deliveries,missing,p50_ms,p99_ms,max_ms,mean_ms,server_cpu_s,cpu_us_per_delivery,client_cpu_s,rss_idle_mb,rss_peak_mb,connect_s\n",
    );
    let _ = writeln!(md, "# End to end: publish over HTTP → receipt on every subscriber\n");
    let _ = writeln!(md, "Measured {machine}. Command: `bash bench/run.sh` (e2e part: `bench-e2e --levels {} --messages {} --max-deliveries {} --burst {} --burst-inflight {}`). One server process at a time on 127.0.0.1, the load client in another process ({} worker threads); sequential messages, each timed from just before its POST to its receipt on every socket.\n",
        args.levels.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(","), args.messages, args.max_deliveries, args.burst, args.burst_inflight, args.client_threads);
    let _ = writeln!(md, "## Latency\n");
    let _ = writeln!(
        md,
        "| subscribers | server | messages | deliveries | missing | p50 ms | p99 ms | max ms | server CPU µs/delivery | server RSS MB (idle / peak) |"
    );
    let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut all_levels: Vec<usize> = reports.iter().flat_map(|r| r.levels.iter().map(|l| l.subscribers)).collect();
    all_levels.sort_unstable();
    all_levels.dedup();
    for n in &all_levels {
        for r in reports {
            if let Some(l) = level(r, *n) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                    l.subscribers,
                    r.target.name(),
                    l.messages,
                    l.deliveries,
                    l.missing,
                    ms(l.latency.p50_us),
                    ms(l.latency.p99_us),
                    ms(l.latency.max_us),
                    opt(l.cpu_us_per_delivery, 2),
                    mb(l.rss_idle_kb),
                    mb(l.rss_peak_kb)
                );
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{},{},{},{:.3},{},{},{},{},{},{:.2}",
                    r.target.name(),
                    l.subscribers,
                    l.messages,
                    l.deliveries,
                    l.missing,
                    ms(l.latency.p50_us),
                    ms(l.latency.p99_us),
                    ms(l.latency.max_us),
                    l.latency.mean_us / 1000.0,
                    opt(l.server_cpu_secs, 3),
                    opt(l.cpu_us_per_delivery, 3),
                    opt(l.client_cpu_secs, 3),
                    mb(l.rss_idle_kb),
                    mb(l.rss_peak_kb),
                    l.connect_secs
                );
            }
        }
    }
    let _ = writeln!(md, "\nCPU per delivery is the server's user + system time (`/proc/<pid>/stat`, all threads) over the measured messages divided by the deliveries: it includes the HTTP publish (and, for the local stack, the route, its storage, the event bus, sequencing, the log and the pushes). It is read in 10 ms ticks, so it means little below ~1,000 subscribers.\n");

    let _ = writeln!(md, "## Fan-out throughput and the servers' cost\n");
    let _ = writeln!(md, "| server | sockets held | connect + subscribe s | messages (in flight) | deliveries | missing | deliveries/s | p50 ms | p99 ms | server CPU µs/delivery | load client CPU s | server RSS peak MB | frame bytes |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut tcsv = String::from("server,subscribers,messages,inflight,deliveries,missing,secs,deliveries_per_sec,p50_ms,p99_ms,server_cpu_s,cpu_us_per_delivery,client_cpu_s,rss_peak_mb,frame_bytes\n");
    for r in reports {
        if let Some(b) = &r.burst {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} ({}) | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.0} |",
                r.target.name(),
                r.connected,
                r.levels.iter().map(|l| l.connect_secs).sum::<f64>(),
                b.messages,
                b.inflight,
                b.deliveries,
                b.missing,
                b.deliveries_per_sec,
                ms(b.latency.p50_us),
                ms(b.latency.p99_us),
                opt(b.cpu_us_per_delivery, 2),
                opt(b.client_cpu_secs, 2),
                mb(b.rss_peak_kb),
                r.frame_bytes
            );
            let _ = writeln!(
                tcsv,
                "{},{},{},{},{},{},{:.3},{:.0},{},{},{},{},{},{},{:.0}",
                r.target.name(),
                b.subscribers,
                b.messages,
                b.inflight,
                b.deliveries,
                b.missing,
                b.secs,
                b.deliveries_per_sec,
                ms(b.latency.p50_us),
                ms(b.latency.p99_us),
                opt(b.server_cpu_secs, 3),
                opt(b.cpu_us_per_delivery, 3),
                opt(b.client_cpu_secs, 3),
                mb(b.rss_peak_kb),
                r.frame_bytes
            );
        }
    }
    ratios(&mut md, reports);
    for r in reports {
        if r.connect_failures > 0 || !r.notes.is_empty() {
            let _ = writeln!(
                md,
                "\nNotes ({}): {} connect failures. {}",
                r.target.name(),
                r.connect_failures,
                r.notes.join("; ")
            );
        }
    }
    std::fs::write(out.join("e2e.md"), &md)?;
    std::fs::write(out.join("e2e.csv"), csv)?;
    std::fs::write(out.join("throughput.csv"), tcsv)?;
    std::fs::write(out.join("e2e.json"), serde_json::to_string_pretty(reports)?)?;
    let png = out.join("latency.png");
    plot_latency(reports, machine, &png)?;
    println!(
        "\n{md}\nwrote {}/e2e.md, e2e.csv, throughput.csv, e2e.json and {}",
        out.display(),
        png.display()
    );
    Ok(())
}

/// The ratios to the peers, and the targets.
fn ratios(md: &mut String, reports: &[Report]) {
    let Some(rt) = find(reports, Target::Realtime) else { return };
    let peers: Vec<&Report> = reports.iter().filter(|r| r.target != Target::Realtime).collect();
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Ratios (local stack ÷ peer; below 1 is better for latency, CPU and RSS, above 1 for throughput)\n"
    );
    let _ = writeln!(
        md,
        "| figure |{}",
        peers.iter().map(|p| format!(" ÷ {} |", p.target.name())).collect::<String>()
    );
    let _ = writeln!(md, "|---|{}", "---:|".repeat(peers.len()));
    let row = |md: &mut String, name: String, f: &dyn Fn(&Report) -> Option<f64>| {
        let a = f(rt);
        let cells: String = peers
            .iter()
            .map(|p| match (a, f(p)) {
                (Some(a), Some(b)) => format!(" {} |", ratio(a, b)),
                _ => " - |".into(),
            })
            .collect();
        let _ = writeln!(md, "| {name} |{cells}");
    };
    for l in &rt.levels {
        let n = l.subscribers;
        row(md, format!("p50 latency at {n}"), &|r| {
            level(r, n).map(|l| f64::from(l.latency.p50_us))
        });
        row(md, format!("p99 latency at {n}"), &|r| {
            level(r, n).map(|l| f64::from(l.latency.p99_us))
        });
    }
    row(md, "deliveries/s (throughput phase)".into(), &|r| {
        r.burst.as_ref().map(|b| b.deliveries_per_sec)
    });
    row(md, "server CPU per delivery (throughput phase)".into(), &|r| {
        r.burst.as_ref().and_then(|b| b.cpu_us_per_delivery)
    });
    if let Some(top) = rt.levels.last() {
        let n = top.subscribers;
        row(md, format!("server CPU per delivery (latency phase, {n} subscribers)"), &|r| {
            level(r, n).and_then(|l| l.cpu_us_per_delivery)
        });
        row(md, format!("server RSS with {n} sockets idle"), &|r| {
            level(r, n).and_then(|l| l.rss_idle_kb).map(|k| k as f64)
        });
    }
    row(md, "server RSS peak (throughput phase)".into(), &|r| {
        r.burst.as_ref().and_then(|b| b.rss_peak_kb).map(|k| k as f64)
    });

    let _ = writeln!(md, "\n## Targets (issue 7)\n");
    let check = |ok: bool| if ok { "met" } else { "**missed**" };
    if let Some(l) = level(rt, 1000) {
        let p99 = f64::from(l.latency.p99_us) / 1000.0;
        let by = if p99 > 5.0 {
            format!(" by {:.2} ms ({:.1}×)", p99 - 5.0, p99 / 5.0)
        } else {
            String::new()
        };
        let _ = writeln!(md, "* p99 ≤ 5 ms at 1,000 subscribers: {p99:.2} ms, {}{by}", check(p99 <= 5.0));
        for p in &peers {
            if let Some(pl) = level(p, 1000) {
                let _ = writeln!(md, "  * {} at 1,000: p99 {} ms", p.target.name(), ms(pl.latency.p99_us));
            }
        }
    }
    if let Some(l) = rt.levels.iter().find(|l| l.subscribers >= 10_000) {
        let peak = l.rss_peak_kb.max(rt.burst.as_ref().and_then(|b| b.rss_peak_kb)).unwrap_or(0) as f64 / 1024.0;
        let by = if peak >= 200.0 {
            format!(" by {:.0} MB ({:.1}×)", peak - 200.0, peak / 200.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "* 10,000 connections under 200 MB RSS: {} held, {peak:.1} MB peak, {}{by}",
            l.subscribers,
            check(peak < 200.0)
        );
    }
    let cpu = |t: Target| {
        find(reports, t)
            .and_then(|r| r.burst.as_ref())
            .and_then(|b| b.cpu_us_per_delivery)
            .filter(|c| *c > 0.0)
    };
    if let (Some(a), Some(s)) = (cpu(Target::Realtime), cpu(Target::Socketio)) {
        let _ = writeln!(
            md,
            "* CPU per delivery ≤ ½ Socket.IO's: {a:.2} vs {s:.2} µs ({}), {}",
            ratio(a, s),
            check(a <= s / 2.0)
        );
    }
    if let (Some(a), Some(b)) = (cpu(Target::Realtime), cpu(Target::Bare)) {
        let _ = writeln!(
            md,
            "* CPU per delivery ≤ 1.5× the bare server's: {a:.2} vs {b:.2} µs ({}), {}",
            ratio(a, b),
            check(a <= 1.5 * b)
        );
    }
    let rss = |t: Target| find(reports, t).and_then(|r| r.burst.as_ref()).and_then(|b| b.rss_peak_kb);
    if let (Some(a), Some(s)) = (rss(Target::Realtime), rss(Target::Socketio)) {
        let _ = writeln!(
            md,
            "* RSS below Socket.IO's: {} vs {} MB, {}",
            mb(Some(a)),
            mb(Some(s)),
            check(a < s)
        );
    }
    if let Some(sio) = find(reports, Target::Socketio) {
        let mut behind = Vec::new();
        for l in &rt.levels {
            if let Some(p) = level(sio, l.subscribers) {
                if l.latency.p50_us > p.latency.p50_us {
                    behind.push(format!("p50 at {}", l.subscribers));
                }
                if l.latency.p99_us > p.latency.p99_us {
                    behind.push(format!("p99 at {}", l.subscribers));
                }
            }
        }
        if let (Some(a), Some(b)) = (&rt.burst, &sio.burst) {
            if a.deliveries_per_sec < b.deliveries_per_sec {
                behind.push("deliveries/s".into());
            }
        }
        let _ = writeln!(
            md,
            "* Ahead of Socket.IO on every latency and throughput figure: {}",
            if behind.is_empty() {
                "met".to_string()
            } else {
                format!("**missed** on {}", behind.join(", "))
            }
        );
    }
}

fn plot_latency(reports: &[Report], machine: &str, path: &Path) -> anyhow::Result<()> {
    let color = |t: Target| match t {
        Target::Realtime => [31, 119, 180],
        Target::Socketio => [230, 110, 0],
        Target::Bare => [44, 150, 44],
        Target::BareTuned => [150, 100, 190],
    };
    let mut series = Vec::new();
    for r in reports {
        for (p, dashed) in [("p50", false), ("p99", true)] {
            let name = match r.target {
                Target::Realtime => "realtime-local",
                Target::Socketio => "socket.io 4",
                Target::Bare => "bare tokio",
                Target::BareTuned => "bare 4K-buf",
            };
            series.push(Series {
                label: format!("{name} {p}"),
                color: color(r.target),
                dashed,
                points: r
                    .levels
                    .iter()
                    .map(|l| {
                        (
                            l.subscribers as f64,
                            f64::from(if dashed { l.latency.p99_us } else { l.latency.p50_us }).max(1.0) / 1000.0,
                        )
                    })
                    .collect(),
            });
        }
    }
    let chart = Chart {
        title: "Publish -> receipt on every subscriber".into(),
        subtitle: format!(
            "HTTP publish to one channel, WebSocket subscribers, 127.0.0.1, p50 solid, p99 dashed; {}",
            short_machine(machine)
        ),
        x_label: "subscribers".into(),
        y_label: "latency (ms)".into(),
        series,
    };
    plot::render(&chart, 1200, 640).write_png(path)
}

/// "2026-01-01 10:00 UTC, 2 cores, load 3.5" from the machine line.
fn short_machine(machine: &str) -> String {
    let date = machine.split(';').next().unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = machine
        .rsplit("load average ")
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?");
    format!("{date}, {cores} cores, load {load}")
}
