// The clock and memory probes of recipes that time their stages, placed in `semidpo` itself:
// `semidpo.clock`, `semidpo.cpu_seconds`, `semidpo.peak_rss_mb`, `semidpo.reset_peak_rss`
// (recipes/lib/timing.lua builds on them).
import CLua
import Core

/// Wall clock and memory probes for benchmark recipes, placed in `semidpo` itself.
enum MeasureBindings: LuaBindings {
    static let module: String? = nil
    static let functions: [LuaFunction] = [
        LuaFunction("clock", measure_clock),
        LuaFunction("cpu_seconds", measure_cpu_seconds),
        LuaFunction("peak_rss_mb", measure_peak_rss_mb),
        LuaFunction("reset_peak_rss", measure_reset_peak_rss),
    ]
}

/// `semidpo.clock() -> seconds`: a monotonic wall clock (CLOCK_MONOTONIC), for timing stages.
private func measure_clock(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "clock") { args in
        try args.push(monotonicSeconds())
        return 1
    }
}

/// `semidpo.cpu_seconds() -> seconds`: user + system CPU time of the process so far, all threads.
/// Next to wall time it shows how much of the machine the process got (other jobs share the cores).
private func measure_cpu_seconds(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "cpu_seconds") { args in
        try args.push(cpuSecondsUsed())
        return 1
    }
}

/// `semidpo.peak_rss_mb() -> MiB`: peak resident set size of the process (VmHWM) since start or the
/// last `reset_peak_rss()`; nil where /proc is unavailable.
private func measure_peak_rss_mb(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "peak_rss_mb") { args in
        try args.push(peakResidentMiB())
        return 1
    }
}

/// `semidpo.reset_peak_rss() -> ok`: resets the peak-RSS mark to the current RSS, so the next
/// `peak_rss_mb()` measures one stage; false if the kernel refused.
private func measure_reset_peak_rss(_ L: OpaquePointer?) -> Int32 {
    lua_wrap(L, "reset_peak_rss") { args in
        try args.push(resetPeakResident())
        return 1
    }
}
