#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/grafana/ from the panel lists
below (run it after editing them; tests/prometheus_test.py checks the files
are up to date and evaluates every expression against a real Prometheus).

Every expression uses only metrics the project exports (docs/HARNESS.md,
"Metrics") and the recording rules in prometheus/rules.yml. `$profile` is the
dashboard's profile variable, `$host` the captured-traffic dashboard's host."""
import json
import pathlib
import sys

P = '{profile=~"$profile"}'
H = '{host=~"$host"}'

DASHBOARDS = {
    "residency-fleet": ("Residency: fleet", [
        ("Fleet overview", [
            ("Agents up", "stat", 'sum(up{job="residency-agents"})', "short"),
            ("Runs per second by outcome", "timeseries", "sum by (outcome) (residency:runs:rate5m)", "ops"),
            ("Sweeps queued or running", "stat", "sum(residency_sweeps_queued)", "short"),
            ("Sweeps finished (1h) by status", "stat", "sum by (status) (increase(residency_sweeps_total[1h]))", "short"),
            ("Simulated events per second", "timeseries", "sum(rate(residency_simulated_events_total[5m]))", "ops"),
            ("Builds in the fleet", "table", "count by (version) (residency_build_info)", "short"),
        ]),
        ("OOMs and violations", [
            ("OOMs (1h) by profile and policy", "timeseries",
             "sum by (profile, policy) (increase(residency_ooms_total[1h]))", "short"),
            ("Invariant violations (1h)", "stat", "sum(increase(residency_invariant_violations_total[1h]))", "short"),
            ("Infeasible runs (1h) by profile and policy", "timeseries",
             'sum by (profile, policy) (increase(residency_runs_total{outcome="infeasible"}[1h]))', "short"),
            ("Peak over budget (worst tier)", "timeseries",
             "max by (profile, trace, tier) (residency:memory_peak_over_budget:ratio)", "percentunit"),
        ]),
        ("Agent health", [
            ("Agent up", "timeseries", 'up{job="residency-agents"}', "short"),
            ("HTTP p99 latency by route", "timeseries",
             "residency:http_request_duration_seconds:p99_5m", "s"),
            ("HTTP requests per second by route and code", "timeseries",
             "sum by (route, code) (rate(residency_http_requests_total[5m]))", "reqps"),
            ("Trace ingestion", "timeseries", "sum(rate(residency_traces_ingested_bytes_total[5m]))", "Bps"),
        ]),
    ]),
    "residency-profiles": ("Residency: per profile", [
        ("Residency per profile", [
            ("Peak bytes by trace and tier", "timeseries",
             f"max by (profile, trace, tier) (residency_memory_peak_bytes{P})", "bytes"),
            ("Budget by tier", "timeseries", f"max by (profile, tier) (residency_memory_budget_bytes{P})", "bytes"),
            ("Peak / budget", "timeseries",
             f"max by (profile, policy, trace, tier) (residency_memory_peak_bytes{P} / (residency_memory_budget_bytes{P} > 0))",
             "percentunit"),
            ("Runs (1h) by outcome", "timeseries",
             f"sum by (profile, outcome) (increase(residency_runs_total{P}[1h]))", "short"),
        ]),
        ("Load throughput", [
            ("Load throughput (bytes per second of loading)", "timeseries",
             'residency:load_throughput_bytes_per_second:rate5m{profile=~"$profile"}', "Bps"),
            ("Bytes loaded by source", "timeseries",
             f"sum by (from) (rate(residency_load_bytes_total{P}[5m]))", "Bps"),
            ("Time spent loading", "timeseries",
             f"sum by (profile, policy) (rate(residency_load_seconds_total{P}[5m]))", "s"),
        ]),
        ("Cache efficiency", [
            ("RAM-cache hit ratio", "timeseries",
             'residency:ram_cache_hit_ratio:rate5m{profile=~"$profile"}', "percentunit"),
            ("RAM-cache hits and misses", "timeseries",
             f"sum by (policy) (rate(residency_ram_cache_hits_total{P}[5m])) "
             f"+ sum by (policy) (rate(residency_ram_cache_misses_total{P}[5m]))", "ops"),
            ("Evictions by tier and reason", "timeseries",
             f"sum by (tier, reason) (rate(residency_evictions_total{P}[5m]))", "ops"),
            ("Bytes evicted by tier", "timeseries",
             f"sum by (tier) (rate(residency_evicted_bytes_total{P}[5m]))", "Bps"),
        ]),
    ]),
    # What real servers did (from the captured traces agents receive), how far
    # the simulator is from them, and what the gate says of each candidate.
    "residency-captured": ("Residency: captured traffic", [
        ("The real fleet", [
            ("Prompts per hour by host and status", "timeseries",
             f"sum by (host, status) (increase(residency_captured_prompts_total{H}[1h]))", "short"),
            ("Prompt wall time p50 / p90 by host", "timeseries",
             f"histogram_quantile(0.5, sum by (host, le) (rate(residency_captured_prompt_seconds_bucket{H}[1h]))) "
             f"or histogram_quantile(0.9, sum by (host, le) (rate(residency_captured_prompt_seconds_bucket{H}[1h])))",
             "s"),
            ("Model loads per hour by source (disk, RAM cache, resident)", "timeseries",
             f"sum by (from) (increase(residency_captured_model_loads_total{H}[1h]))", "short"),
            ("Reloads from RAM per prompt", "timeseries",
             f'sum by (host) (increase(residency_captured_model_loads_total{{host=~"$host", from="ram_cache"}}[1h])) '
             f"/ sum by (host) (increase(residency_captured_prompts_total{H}[1h]))", "short"),
            ("Bytes loaded by source", "timeseries",
             f"sum by (from) (rate(residency_captured_loaded_bytes_total{H}[1h]))", "Bps"),
            ("Share of prompt time spent loading", "timeseries",
             f"sum by (host) (rate(residency_captured_load_seconds_total{H}[1h])) "
             f"/ sum by (host) (rate(residency_captured_prompt_seconds_sum{H}[1h]))", "percentunit"),
            ("Unloads per hour by reason", "timeseries",
             f"sum by (reason) (increase(residency_captured_unloads_total{H}[1h]))", "short"),
        ]),
        ("The simulator on real traffic", [
            ("p90 |error| per prompt, fleet", "stat", "residency:fidelity_abs_error:p90_1h", "percentunit"),
            ("p90 |error| per prompt by host", "timeseries",
             'residency:fidelity_abs_error_by_host:p90_1h{host=~"$host"}', "percentunit"),
            ("Prompts compared per hour by host", "timeseries",
             f"sum by (host) (increase(residency_fidelity_abs_error_ratio_count{H}[1h]))", "short"),
        ]),
        ("The gate", [
            ("Verdicts (1h) by candidate and verdict", "timeseries",
             "sum by (candidate, verdict) (increase(residency_gate_verdicts_total[1h]))", "short"),
            ("Failing verdicts (1h) by profile and candidate", "table",
             "residency:gate_failing_verdicts:increase1h", "short"),
            ("Captured traces waiting for replay", "timeseries",
             "sum by (instance, state) (residency_captured_replay_queue)", "short"),
            ("Replays per second by status", "timeseries",
             "sum by (status) (rate(residency_captured_replays_total[5m]))", "ops"),
            ("Replay time p99", "timeseries",
             "histogram_quantile(0.99, sum by (le) (rate(residency_captured_replay_seconds_bucket[1h])))", "s"),
        ]),
    ]),
}

# Each dashboard's variable: profiles for the simulated runs, hosts for the
# captured traffic.
VARIABLES = {
    "residency-captured": ("host", "Host", "label_values(residency_captured_prompts_total, host)"),
}
DEFAULT_VARIABLE = ("profile", "Profile", "label_values(residency_memory_peak_bytes, profile)")


def dashboard(uid, title, rows):
    panels, y, pid = [], 0, 1
    for row_title, row_panels in rows:
        panels.append({"type": "row", "title": row_title, "id": pid, "collapsed": False,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        pid += 1
        y += 1
        for i, (title_, kind, expr, unit) in enumerate(row_panels):
            panels.append({
                "type": kind, "title": title_, "id": pid,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"x": (i % 3) * 8, "y": y + (i // 3) * 8, "w": 8, "h": 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"refId": "A", "expr": expr,
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}}],
            })
            pid += 1
        y += ((len(row_panels) + 2) // 3) * 8
    var, label, query = VARIABLES.get(uid, DEFAULT_VARIABLE)
    return {
        "uid": uid, "title": title, "tags": ["residency"], "schemaVersion": 38, "version": 1,
        "editable": True, "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": var, "type": "query", "label": label, "multi": True, "includeAll": True,
             "allValue": ".+", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": query, "refId": var + "s"},
             "refresh": 2},
        ]},
        "panels": panels,
    }


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "grafana"
    out.mkdir(parents=True, exist_ok=True)
    for uid, (title, rows) in DASHBOARDS.items():
        (out / f"{uid}.json").write_text(json.dumps(dashboard(uid, title, rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
