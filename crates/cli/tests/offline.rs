//! Integration tests of the offline commands (`coreplex drift`, `coreplex ab`), running the real
//! binary. Each test gets its own temporary directory; a failing run prints the command, its
//! stdout and its stderr.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir {
    dir: tempfile::TempDir,
}

fn setup() -> Dir {
    Dir {
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

impl Dir {
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coreplex"))
        .args(args)
        .output()
        .expect("run coreplex")
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "command: coreplex {}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run, expect success, parse stdout as JSON.
fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(out.status.success(), "{}", describe(args, &out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", describe(args, &out)))
}

/// Run, expect exit code 2 with a one-line error mentioning `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(args, &out));
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected\n{}",
        describe(args, &out)
    );
    assert!(stderr.starts_with("error: "), "{}", describe(args, &out));
    assert!(
        stderr.contains(needle),
        "expected '{needle}'\n{}",
        describe(args, &out)
    );
    assert!(out.stdout.is_empty(), "{}", describe(args, &out));
}

fn close(a: &Value, b: f64) -> bool {
    let a = a.as_f64().unwrap_or(f64::NAN);
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

const REFERENCE: &str = "\
x,color,count,note
1.5,red,1,a
2.5,red,2,b
3.5,blue,1,c
4.5,green,3,\"with, comma\"
5.5,red,2,\"two
lines\"
6.5,blue,1,f
";

const CURRENT: &str = "\
x,color,count,note
3.5,blue,1,a
4.5,blue,2,b
,green,3,NA
5.5,green,3,d
7.5,red,2,e
8.5,green,3,f
";

#[test]
fn drift_json_has_the_spec_fields_and_scipy_values() {
    let d = setup();
    let r = d.write("ref.csv", REFERENCE);
    let c = d.write("cur.csv", CURRENT);
    // stdout is a pipe here, so JSON is the default.
    let report = json(&[
        "drift",
        "--reference",
        r.to_str().unwrap(),
        "--current",
        c.to_str().unwrap(),
    ]);
    let features = report["features"].as_array().unwrap();
    let names: Vec<&str> = features
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "color", "count", "note"]);
    for f in features {
        for field in [
            "name",
            "kind",
            "psi",
            "missing_share_reference",
            "missing_share_current",
            "drifted",
        ] {
            assert!(f.get(field).is_some(), "{field} missing in {f}");
        }
    }
    let x = &features[0];
    assert_eq!(x["kind"], "numeric");
    // scipy.stats.ks_2samp([1.5..6.5], [3.5, 4.5, 5.5, 7.5, 8.5]) -> 0.4, 0.6883116883116883
    assert!(close(&x["ks_statistic"], 0.4), "{x}");
    assert!(close(&x["ks_p_value"], 0.6883116883116883), "{x}");
    assert!(close(&x["missing_share_current"], 1.0 / 6.0), "{x}");
    assert!(x.get("chi2_statistic").is_none());
    let color = &features[1];
    assert_eq!(color["kind"], "categorical");
    // chi2_contingency([[3,2,1],[1,2,3]], correction=False) -> 2.0, 0.36787944117144245
    assert!(close(&color["chi2_statistic"], 2.0), "{color}");
    assert!(
        close(&color["chi2_p_value"], 0.36787944117144245),
        "{color}"
    );
    assert!(color.get("ks_statistic").is_none());
    assert_eq!(features[2]["kind"], "numeric");
    let note = &features[3];
    assert_eq!(note["kind"], "categorical");
    assert!(close(&note["missing_share_current"], 1.0 / 6.0), "{note}");
    let score = report["data_drift_score"].as_f64().unwrap();
    let drifted = features.iter().filter(|f| f["drifted"] == true).count();
    assert!((score - drifted as f64 / 4.0).abs() < 1e-12);
}

#[test]
fn drift_categorical_flag_forces_the_type_and_table_is_readable() {
    let d = setup();
    let r = d.write("ref.csv", REFERENCE);
    let c = d.write("cur.csv", CURRENT);
    let (rs, cs) = (r.to_str().unwrap(), c.to_str().unwrap());
    let report = json(&[
        "drift",
        "--reference",
        rs,
        "--current",
        cs,
        "--categorical",
        "count,x",
        "--format",
        "json",
    ]);
    assert_eq!(report["features"][0]["kind"], "categorical");
    assert_eq!(report["features"][2]["kind"], "categorical");
    let args = [
        "drift",
        "--reference",
        rs,
        "--current",
        cs,
        "--format",
        "table",
    ];
    let out = run(&args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("data_drift_score"), "{text}");
    assert!(
        text.lines().next().unwrap().starts_with("feature"),
        "{text}"
    );
}

#[test]
fn drift_detects_a_shift_and_rereads_late_text_as_categorical() {
    let d = setup();
    let mut reference = String::from("value,code\n");
    let mut current = String::from("value,code\n");
    for i in 0..3000 {
        let v = (i % 100) as f64 / 10.0;
        reference.push_str(&format!("{v},{}\n", i % 5));
        // The code column turns to text only after the rows used to guess types.
        let code = if i > 2500 {
            "late".to_owned()
        } else {
            (i % 5).to_string()
        };
        current.push_str(&format!("{},{code}\n", v + 3.0));
    }
    let r = d.write("ref.csv", &reference);
    let c = d.write("cur.csv", &current);
    let report = json(&[
        "drift",
        "--reference",
        r.to_str().unwrap(),
        "--current",
        c.to_str().unwrap(),
    ]);
    let value = &report["features"][0];
    assert_eq!(value["drifted"], true, "{value}");
    assert!(value["psi"].as_f64().unwrap() >= 0.1);
    let code = &report["features"][1];
    assert_eq!(code["kind"], "categorical", "{code}");
    assert_eq!(code["n_current"], 3000, "{code}");
    assert_eq!(report["data_drift_score"], 1.0);
}

#[test]
fn drift_bad_input_exits_2_with_one_line() {
    let d = setup();
    let r = d.write("ref.csv", REFERENCE);
    let c = d.write("cur.csv", CURRENT);
    let empty = d.write("empty.csv", "");
    let header_only = d.write("header.csv", "x,color,count,note\n");
    let ragged = d.write("ragged.csv", "x,color,count,note\n1,red,2\n");
    let text = d.write("text.csv", "x,color,count,note\n1.5,red,oops,a\n");
    let missing = d.path().join("nope.csv");
    let (rs, cs) = (r.to_str().unwrap(), c.to_str().unwrap());
    fails_with(
        &[
            "drift",
            "--reference",
            rs,
            "--current",
            cs,
            "--categorical",
            "colour",
        ],
        "unknown column 'colour'",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            rs,
            "--current",
            empty.to_str().unwrap(),
        ],
        "is empty",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            header_only.to_str().unwrap(),
            "--current",
            cs,
        ],
        "no data rows",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            rs,
            "--current",
            ragged.to_str().unwrap(),
        ],
        "fields",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            rs,
            "--current",
            text.to_str().unwrap(),
            "--numeric",
            "count",
        ],
        "'oops'",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            missing.to_str().unwrap(),
            "--current",
            cs,
        ],
        "cannot open",
    );
    fails_with(
        &[
            "drift",
            "--reference",
            rs,
            "--current",
            cs,
            "--alpha",
            "1.5",
        ],
        "--alpha",
    );
}

#[test]
fn ab_analyze_proportion_matches_statsmodels() {
    let out = json(&[
        "ab",
        "analyze",
        "--metric",
        "proportion",
        "--control",
        "100/1000",
        "--treatment",
        "120/1000",
    ]);
    for field in [
        "z",
        "p_value",
        "difference",
        "relative_lift",
        "ci_low",
        "ci_high",
        "significant",
    ] {
        assert!(out.get(field).is_some(), "{field} missing in {out}");
    }
    // statsmodels proportions_ztest([120, 100], [1000, 1000])
    assert!(close(&out["z"], 1.4293008498232314), "{out}");
    assert!((out["p_value"].as_f64().unwrap() - 0.1529177818639462).abs() < 1e-9);
    assert!(close(&out["difference"], 0.02));
    assert!(close(&out["relative_lift"], 0.2));
    assert_eq!(out["significant"], false);
    assert!(out.get("sequential").is_none());

    let seq = json(&[
        "ab",
        "analyze",
        "--metric",
        "proportion",
        "--control",
        "100/1000",
        "--treatment",
        "160/1000",
        "--sequential",
        "--alpha",
        "0.05",
    ]);
    let s = &seq["sequential"];
    assert!(
        s["p_value"].as_f64().unwrap() >= seq["p_value"].as_f64().unwrap(),
        "{seq}"
    );
    assert!(
        s["ci_low"].as_f64().unwrap() <= seq["ci_low"].as_f64().unwrap(),
        "{seq}"
    );
}

#[test]
fn ab_analyze_mean_matches_scipy() {
    let out = json(&[
        "ab",
        "analyze",
        "--metric",
        "mean",
        "--control-stats",
        "10,2,50",
        "--treatment-stats",
        "11,2.5,60",
    ]);
    for field in [
        "t",
        "df",
        "p_value",
        "difference",
        "ci_low",
        "ci_high",
        "significant",
    ] {
        assert!(out.get(field).is_some(), "{field} missing in {out}");
    }
    // scipy.stats.ttest_ind_from_stats(11, 2.5, 60, 10, 2, 50, equal_var=False)
    assert!(close(&out["t"], 2.3302069121418523), "{out}");
    assert!((out["p_value"].as_f64().unwrap() - 0.021656432252212615).abs() < 1e-9);
    assert_eq!(out["significant"], true);
}

#[test]
fn ab_sample_size_matches_statsmodels() {
    // ceil(NormalIndPower().solve_power(proportion_effectsize(0.12, 0.1), 0.05, 0.8)) = 3835
    let p = json(&[
        "ab",
        "sample-size",
        "--metric",
        "proportion",
        "--baseline",
        "0.1",
        "--mde",
        "0.02",
    ]);
    assert_eq!(p["per_variant"], 3835);
    // d = 0.5 -> 62.79 -> 63
    let m = json(&[
        "ab",
        "sample-size",
        "--metric",
        "mean",
        "--sd",
        "2",
        "--mde",
        "1",
        "--alpha",
        "0.05",
        "--power",
        "0.8",
    ]);
    assert_eq!(m["per_variant"], 63);
}

#[test]
fn ab_srm_flags_a_mismatch() {
    let out = json(&["ab", "srm", "--counts", "5000,5600", "--weights", "1,1"]);
    assert_eq!(out["mismatch"], true, "{out}");
    let ok = json(&["ab", "srm", "--counts", "5000,5010"]);
    assert_eq!(ok["mismatch"], false, "{ok}");
}

#[test]
fn ab_bad_input_exits_2_with_one_line() {
    let a = ["ab", "analyze", "--metric", "proportion"];
    fails_with(
        &[&a[..], &["--control", "1200/1000", "--treatment", "10/100"]].concat(),
        "exceed",
    );
    fails_with(
        &[&a[..], &["--control", "0/0", "--treatment", "10/100"]].concat(),
        "at least 1",
    );
    fails_with(
        &[&a[..], &["--control", "ten/100", "--treatment", "10/100"]].concat(),
        "--control",
    );
    fails_with(
        &[
            &a[..],
            &[
                "--control",
                "10/100",
                "--treatment",
                "10/100",
                "--alpha",
                "0",
            ],
        ]
        .concat(),
        "--alpha",
    );
    fails_with(&[&a[..], &["--control", "10/100"]].concat(), "--treatment");
    let m = ["ab", "analyze", "--metric", "mean"];
    fails_with(
        &[
            &m[..],
            &["--control-stats", "1,2", "--treatment-stats", "1,2,3"],
        ]
        .concat(),
        "MEAN,SD,N",
    );
    fails_with(
        &[
            &m[..],
            &["--control-stats", "1,-2,10", "--treatment-stats", "1,2,3"],
        ]
        .concat(),
        "standard deviation",
    );
    let s = [
        "ab",
        "sample-size",
        "--metric",
        "proportion",
        "--baseline",
        "0.1",
    ];
    fails_with(&[&s[..], &["--mde", "0"]].concat(), "--mde");
    fails_with(&[&s[..], &["--mde", "-0.01"]].concat(), "--mde");
    fails_with(
        &[&s[..], &["--mde", "0.01", "--power", "1.2"]].concat(),
        "--power",
    );
    fails_with(
        &[&s[..], &["--mde", "0.01", "--alpha", "-0.1"]].concat(),
        "--alpha",
    );
    fails_with(
        &["ab", "sample-size", "--metric", "mean", "--mde", "1"],
        "--sd",
    );
    fails_with(&["ab", "srm", "--counts", "0,0"], "zero");
}
