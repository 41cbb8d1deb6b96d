package bench

import (
	"fmt"
	"io"
)

// WriteText prints r for humans.
func (r *Result) WriteText(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPU (%s), GOMAXPROCS %d, %.1f GiB RAM, %s %s\n",
		m.NumCPU, m.CPUModel, m.GOMAXPROCS, float64(m.MemTotal)/(1<<30), m.GoVersion, m.OS)
	if m.MemoryLimit > 0 {
		fmt.Fprintf(w, "GOMEMLIMIT: %d MiB\n", m.MemoryLimit>>20)
	}
	if in := r.Input; in != nil {
		fmt.Fprintf(w, "input: %d events, %d SIRENs, %d days, %d partitions %v (produced in %.1fs)\n",
			in.Events, in.SIRENs, in.Days, in.Partitions, in.ByTopic, in.ProduceSeconds)
	}
	if len(r.Stages) > 0 {
		rss := "peak RSS"
		if n := len(r.Rounds); n > 1 {
			fmt.Fprintf(w, "each stage: its median round of %d (ratios to the same round's raw); per round:\n", n)
			for i, s := range r.Stages {
				fmt.Fprintf(w, "  %-7s", s.Name)
				for _, round := range r.Rounds {
					if s.Name == StageRaw {
						fmt.Fprintf(w, " %9.0f/s", round[i].RecordsPerSec)
					} else {
						fmt.Fprintf(w, " %6.0f%%", 100*round[i].RatioToRaw)
					}
				}
				fmt.Fprintln(w)
			}
		}
		if !r.RSSResettable {
			rss = "maxrss*"
		}
		fmt.Fprintf(w, "\n%-7s %12s %8s %11s %11s %9s %9s %9s %12s\n", "stage", "records/s", "vs raw", "CPU s/M", "broker s/M", rss, "anon", "changes", "Badger B/SIREN")
		for _, s := range r.Stages {
			bpp := ""
			if s.BadgerBytesPerSIREN > 0 {
				bpp = fmt.Sprintf("%.0f", s.BadgerBytesPerSIREN)
			}
			fmt.Fprintf(w, "%-7s %12.0f %7.0f%% %11.2f %11.2f %5d MiB %5d MiB %9d %12s\n",
				s.Name, s.RecordsPerSec, 100*s.RatioToRaw, s.CPUSecondsPerMillion, s.BrokerCPUSecondsPerMillion,
				s.PeakRSSBytes>>20, s.PeakAnonBytes>>20, s.Changes, bpp)
		}
		if !r.RSSResettable {
			fmt.Fprintln(w, "* process-lifetime maxrss (VmHWM could not be reset); stages run in ascending memory order")
		}
		for _, s := range r.Stages {
			if s.RatioToFloor > 0 {
				fmt.Fprintf(w, "%s / floor-io of the same round: %.2f (the processor's own cost, the I/O its outputs need set aside)\n", s.Name, s.RatioToFloor)
			}
		}
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency at %d events/s for %.0fs (achieved %.0f/s): probe→segment change readable p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d/%d probes seen)\n",
			l.Rate, l.Seconds, l.AchievedRate, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.Observed, l.Probes)
		fmt.Fprintf(w, "  produce→ack p50 %.1f ms p99 %.1f ms; CPU %.2f s/M events (broker %.2f); peak RSS %d MiB (anon %d MiB)\n",
			l.ProduceAckP50, l.ProduceAckP99, l.CPUSecondsPerMillion, l.BrokerCPUSecondsPerMillion, l.PeakRSSBytes>>20, l.PeakAnonBytes>>20)
	}
	if len(r.Scale) > 0 {
		fmt.Fprintf(w, "\n%9s %9s %13s %11s %11s %9s   %s\n", "SIRENs", "build s", "RSS built", "disk", "B/SIREN", "settle s", "sweeps: D+n [pass 1 from] seconds, changes, peak RSS/anon, compaction after (D+2, D+3: one replay)")
		for _, p := range r.Scale {
			fmt.Fprintf(w, "%9d %9.1f %9d MiB %7d MiB %11.0f %9.1f", p.SIRENs, p.BuildSeconds, p.RSSAfterBuild>>20, p.DiskBytes>>20, p.BytesPerSIREN, p.SettleSeconds)
			for _, s := range p.Sweeps {
				fmt.Fprintf(w, "   D+%d [%s] %.2fs %d %d/%d MiB +%.1fs", s.Day, s.Pass1, s.Seconds, s.Changes, s.PeakRSSBytes>>20, s.PeakAnonBytes>>20, s.CompactionAfterSeconds)
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Warm) > 0 {
		fmt.Fprintf(w, "\nwarm: one day of traffic into 90 days of state (full vs the mean of raw before and after, same run)\n")
		fmt.Fprintf(w, "(B/SIREN: busy = after the day and a GC pass at half garbage; idle = after the store's own idle GC pass)\n")
		fmt.Fprintf(w, "%9s %10s %11s %11s %8s %9s %15s %15s %22s %28s\n", "SIRENs", "records", "raw/s", "full/s", "vs raw", "CPU s/M", "peak RSS/anon", "B/SIREN busy/idle", "day change D+2", "first snapshot D+1")
		for _, p := range r.Warm {
			f := p.Full
			fmt.Fprintf(w, "%9d %10d %11.0f %11.0f %7.0f%% %9.2f %6d/%4d MiB %8.0f/%6.0f %8.2fs %6d chg %9.2fs %6d/%4d MiB\n",
				p.SIRENs, p.Records, (p.Raw.RecordsPerSec+p.RawAfter.RecordsPerSec)/2, f.RecordsPerSec, 100*f.RatioToRaw, f.CPUSecondsPerMillion,
				f.PeakRSSBytes>>20, f.PeakAnonBytes>>20, p.BytesPerSIRENBusy, p.BytesPerSIREN, p.DaySweep.Seconds, p.DaySweep.Changes,
				p.FirstSnapshot.Seconds, p.FirstSnapshot.PeakRSSBytes>>20, p.FirstSnapshot.PeakAnonBytes>>20)
		}
		fmt.Fprintf(w, "floors (raw + a read of the record's state per record; + its decoding), same run:\n")
		for _, p := range r.Warm {
			fmt.Fprintf(w, "%9d %10s %11s %11.0f %7.1f%% %9.2f   read + decode: %.0f/s %.1f%% %.2f CPU s/M\n", p.SIRENs, "", "",
				p.FloorRead.RecordsPerSec, 100*p.FloorRead.RatioToRaw, p.FloorRead.CPUSecondsPerMillion,
				p.FloorDecode.RecordsPerSec, 100*p.FloorDecode.RatioToRaw, p.FloorDecode.CPUSecondsPerMillion)
		}
		fmt.Fprintf(w, "floor-io (raw while the full stage's outputs are written again); floor-day (+ every state scanned), all at once, same run:\n")
		for _, p := range r.Warm {
			fmt.Fprintf(w, "%9d %10s %11s %11.0f %7.1f%% %9.2f   floor-day: %.0f/s %.1f%% %.2f CPU s/M; %d outputs\n", p.SIRENs, "", "",
				p.FloorIO.RecordsPerSec, 100*p.FloorIO.RatioToRaw, p.FloorIO.CPUSecondsPerMillion,
				p.FloorDay.RecordsPerSec, 100*p.FloorDay.RatioToRaw, p.FloorDay.CPUSecondsPerMillion, p.FloorDay.Outputs)
		}
		for _, p := range r.Warm {
			fmt.Fprintf(w, "%9d full / floor-day: %.3f (the processor's own cost, the I/O its outputs and the day change's reads need set aside)\n", p.SIRENs, p.Full.RatioToFloor)
		}
	}
}
