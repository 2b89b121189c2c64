// Package metrics exposes rstwatch's counters to Prometheus for the
// always-on `rstwatch serve`.
//
// Resets are counted in the kernel (tracer.Config.Aggregate) and read on
// every scrape; this package turns those per-owner rows into counters with
// bounded labels. Two things shape it:
//
//   - The kernel map is keyed by owner pid, so rows of exited processes are
//     deleted (tracer.ForgetOwner) to keep it from filling. Go keeps the
//     running totals per label set and adds only the growth of each row, so
//     counters never go down when a row disappears.
//   - Process names, ZooKeeper endpoints and the owner's workload
//     (namespace, pod, container, unit: Options.Workload) come from the
//     workload, not from rstwatch: a storm over random names, or pods
//     churning through a deployment, must not create a series each. Each
//     such label keeps its first N values and folds the rest into "other",
//     counting what was folded.
package metrics
