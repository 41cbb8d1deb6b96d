package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/sirenstream/sirenstream/engine"
)

// outcomeFlags are the holdout and attribution settings (spec §8): apart
// from the rules file, so a new rules version cannot reshuffle the holdout.
type outcomeFlags struct {
	holdoutID    string
	holdoutSalt  string
	holdoutShare float64
	holdoutStart string
	conversion   dayDuration
	churn        dayDuration
	sirenDaily   bool
}

func (f *outcomeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.holdoutID, "holdout-id", engine.DefaultHoldoutID, "holdout (universal control group) id; salt and share are recorded per id and a change under the same id is refused")
	fs.StringVar(&f.holdoutSalt, "holdout-salt", engine.DefaultHoldoutSalt, "salt of the holdout hash: FNV-1a-64(salt \":\" siren) % 10000 < share*10000")
	fs.Float64Var(&f.holdoutShare, "holdout-share", engine.DefaultHoldoutShare, "share of SIRENs held out, 0..1")
	fs.StringVar(&f.holdoutStart, "holdout-start", "", "eligibilities before this date (RFC3339 or YYYY-MM-DD) are not measured (default: all)")
	f.conversion = dayDuration(engine.DefaultConversionWindowMs)
	f.churn = dayDuration(engine.DefaultChurnWindowMs)
	fs.Var(&f.conversion, "conversion-window", "a contract event to the offer's product within this after eligibility is a conversion (e.g. 90d, 2160h)")
	fs.Var(&f.churn, "churn-window", "a TERMINATION within this after eligibility is churn (e.g. 180d)")
	fs.BoolVar(&f.sirenDaily, "siren-daily", true, "write the siren-daily snapshot (one record per SIREN per stream day); --siren-daily=false turns it off")
}

func (f *outcomeFlags) startMs() (int64, error) {
	if f.holdoutStart == "" {
		return 0, nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, f.holdoutStart); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("--holdout-start %q: want RFC3339 or YYYY-MM-DD", f.holdoutStart)
}

func (f *outcomeFlags) validate() error {
	if _, err := f.startMs(); err != nil {
		return err
	}
	if f.holdoutShare < 0 || f.holdoutShare > 1 {
		return fmt.Errorf("--holdout-share %v: want 0..1", f.holdoutShare)
	}
	if f.conversion <= 0 || f.churn <= 0 {
		return fmt.Errorf("--conversion-window and --churn-window must be positive")
	}
	return nil
}

// apply sets the holdout and windows of cfg (validate first).
func (f *outcomeFlags) apply(cfg engine.Config) engine.Config {
	start, _ := f.startMs()
	share := f.holdoutShare
	if share == 0 {
		share = -1 // engine: 0 means the default; negative means none
	}
	cfg.Holdout = engine.Holdout{ID: f.holdoutID, Salt: f.holdoutSalt, Share: share, StartMs: start}
	cfg.ConversionWindowMs, cfg.ChurnWindowMs = int64(f.conversion), int64(f.churn)
	return cfg
}

// dayDuration is a duration flag in ms that also takes whole days ("90d").
type dayDuration int64

func (d *dayDuration) String() string {
	if int64(*d)%dayDurationMs == 0 {
		return strconv.FormatInt(int64(*d)/dayDurationMs, 10) + "d"
	}
	return (time.Duration(*d) * time.Millisecond).String()
}

const dayDurationMs = engine.DayMs

func (d *dayDuration) Set(s string) error {
	v, err := parseDuration(s) // 90d, 1d12h, 2160h…
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be positive: " + durationForms)
	}
	*d = dayDuration(v.Milliseconds())
	return nil
}
