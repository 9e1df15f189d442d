//! Latency of the registry's operations with 10, 1,000 and 10,000 other entries:
//! `register` (write a temp file, rename it into place), `unregister` (unlink) and
//! `list` (`Store::live`: list the directory, read and parse every file, judge).
//!
//! The registry lives in a temp directory on the machine's disk, not in memory, as a
//! user's does. `register` and `unregister` are timed with `iter_custom` so that the
//! opposite operation, which keeps the directory at its size between iterations, is
//! not counted. `bench/run.sh` reads the medians back from
//! `target/criterion/registry/<op>/<entries>/new/estimates.json`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wsreg::{Server, Store};

fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry");
    for size in [10u16, 1000, 10_000] {
        let dir = tempfile::tempdir().expect("a temp directory");
        let store = Store::new(dir.path().join("servers"));
        for i in 0..size {
            Server::new("bench", 30_000 + i)
                .register_once(&store)
                .expect("filling the registry");
        }

        group.bench_with_input(BenchmarkId::new("register", size), &store, |b, store| {
            b.iter_custom(|iters| {
                timed_pairs(iters, |id, server| {
                    let start = Instant::now();
                    server.register_once(store).expect("register");
                    let took = start.elapsed();
                    store.unregister(id).expect("unregister");
                    took
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("unregister", size), &store, |b, store| {
            b.iter_custom(|iters| {
                timed_pairs(iters, |id, server| {
                    server.register_once(store).expect("register");
                    let start = Instant::now();
                    store.unregister(id).expect("unregister");
                    start.elapsed()
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("list", size), &store, |b, store| {
            b.iter(|| store.live().expect("list"))
        });
    }
    group.finish();
}

/// Runs `one` for `iters` fresh servers and adds up the durations it reports.
fn timed_pairs(iters: u64, mut one: impl FnMut(&str, Server) -> Duration) -> Duration {
    (0..iters)
        .map(|_| {
            let server = Server::new("bench", 40_000);
            let id = server.entry().id.clone();
            one(&id, server)
        })
        .sum()
}

criterion_group!(benches, registry);
criterion_main!(benches);
