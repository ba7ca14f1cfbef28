//! The command line both simulators take (this crate's `sim` example and the
//! appliance's `appliance_sim`), and the loop that runs the seeds it names: one parser,
//! so a seed's reproduce line means the same to both.

use super::{SimConfig, SimLayout};

/// Every layout, in the order `--layout all` runs them.
pub const ALL_LAYOUTS: [SimLayout; 6] = [
    SimLayout::Raid0,
    SimLayout::Raid1,
    SimLayout::Raid10,
    SimLayout::Raid5,
    SimLayout::Raid6,
    SimLayout::Concat,
];

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// `None`: the simulator's default layouts for each seed.
    pub layouts: Option<Vec<SimLayout>>,
    pub seed: u64,
    /// Run seeds `seed..seed + seeds`.
    pub seeds: u64,
    pub ops: u64,
    /// `None`: odd seeds on.
    pub integrity: Option<bool>,
    pub faults: bool,
    /// `--crashes`: see [`SimConfig::crash_focus`].
    pub crash_focus: bool,
    /// Print the fault schedule of passing runs too.
    pub schedule: bool,
}

impl Options {
    /// Parses `--layout raid0|raid1|raid10|raid5|raid6|concat|all --seed N --seeds K --ops N
    /// --integrity --no-integrity --no-faults --crashes --schedule`; on a bad argument prints why
    /// (as `prog`) and exits with status 2.
    pub fn parse(prog: &str, args: impl IntoIterator<Item = String>, default_ops: u64) -> Options {
        Self::try_parse(args, default_ops).unwrap_or_else(|e| {
            eprintln!("{prog}: {e}");
            std::process::exit(2)
        })
    }

    fn try_parse(
        args: impl IntoIterator<Item = String>,
        default_ops: u64,
    ) -> Result<Options, String> {
        let mut o = Options {
            layouts: None,
            seed: 1,
            seeds: 1,
            ops: default_ops,
            integrity: None,
            faults: true,
            crash_focus: false,
            schedule: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|_| format!("bad {arg}: {v}"));
            match arg.as_str() {
                "--layout" => {
                    let v = value()?;
                    o.layouts = Some(if v == "all" {
                        ALL_LAYOUTS.to_vec()
                    } else {
                        vec![v.parse()?]
                    });
                }
                "--seed" => o.seed = number(value()?)?,
                "--seeds" => o.seeds = number(value()?)?,
                "--ops" => o.ops = number(value()?)?,
                "--integrity" => o.integrity = Some(true),
                "--no-integrity" => o.integrity = Some(false),
                "--no-faults" => o.faults = false,
                "--crashes" => o.crash_focus = true,
                "--schedule" => o.schedule = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(o)
    }

    /// The runs asked for, seed by seed; `default_layouts` picks a seed's layouts when
    /// `--layout` was not given.
    pub fn runs(&self, default_layouts: impl Fn(u64) -> Vec<SimLayout>) -> Vec<SimConfig> {
        let mut runs = Vec::new();
        for seed in self.seed..self.seed + self.seeds {
            let layouts = self
                .layouts
                .clone()
                .unwrap_or_else(|| default_layouts(seed));
            for layout in layouts {
                let mut cfg = SimConfig::new(layout, seed, self.ops);
                if let Some(v) = self.integrity {
                    cfg.integrity = v;
                }
                cfg.faults = self.faults;
                cfg.crash_focus = self.crash_focus;
                runs.push(cfg);
            }
        }
        runs
    }

    /// Runs every configuration in turn: `run` returns the lines to print for a passing
    /// run (its first one follows `ok <layout> seed=<n> <secs>s`) or the failure. Exits
    /// with status 1 when any run failed.
    pub fn campaign(
        &self,
        default_layouts: impl Fn(u64) -> Vec<SimLayout>,
        mut run: impl FnMut(&SimConfig) -> Result<Vec<String>, String>,
    ) {
        let mut failed = 0;
        for cfg in self.runs(default_layouts) {
            let t = std::time::Instant::now();
            match run(&cfg) {
                Ok(lines) => {
                    let secs = t.elapsed().as_secs_f64();
                    let mut lines = lines.into_iter();
                    let first = lines.next().unwrap_or_default();
                    println!("ok {} seed={} {secs:.1}s {first}", cfg.layout, cfg.seed);
                    for l in lines {
                        println!("  {l}");
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{e}");
                }
            }
        }
        if failed > 0 {
            eprintln!("{failed} run(s) failed");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::try_parse(args.iter().map(|s| s.to_string()), 100)
    }

    #[test]
    fn a_reproduce_line_selects_that_one_run() {
        let mut cfg = SimConfig::new(SimLayout::Raid10, 7, 300);
        for crash_focus in [false, true] {
            cfg.crash_focus = crash_focus;
            let line = cfg.args();
            let args: Vec<&str> = line.split(' ').collect();
            let runs = parse(&args).unwrap().runs(|_| vec![SimLayout::Raid0]);
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].args(), cfg.args());
            assert_eq!(runs[0].crash_focus, crash_focus);
        }
    }

    #[test]
    fn seeds_and_default_layouts() {
        let o = parse(&["--seed", "4", "--seeds", "3", "--no-faults"]).unwrap();
        let runs = o.runs(|s| vec![ALL_LAYOUTS[s as usize % ALL_LAYOUTS.len()]]);
        let got: Vec<_> = runs
            .iter()
            .map(|c| (c.layout, c.seed, c.integrity, c.faults))
            .collect();
        assert_eq!(
            got,
            [
                (SimLayout::Raid6, 4, false, false),
                (SimLayout::Concat, 5, true, false),
                (SimLayout::Raid0, 6, false, false),
            ]
        );
        let all = parse(&["--layout", "all", "--no-integrity"])
            .unwrap()
            .runs(|_| vec![]);
        assert_eq!(all.len(), ALL_LAYOUTS.len());
        assert!(all.iter().all(|c| !c.integrity && c.ops == 100));
    }

    #[test]
    fn bad_arguments_say_why() {
        assert!(parse(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--ops", "x"]).unwrap_err().contains("bad --ops"));
        assert!(parse(&["--layout", "raid9"])
            .unwrap_err()
            .contains("unknown layout"));
        assert!(parse(&["--fast"]).unwrap_err().contains("unknown argument"));
    }
}
