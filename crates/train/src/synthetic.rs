//! Seeded synthetic tables with numeric and categorical columns, missing values, and a target that
//! depends on both, for tests and examples.

use crate::rng::Rng;
use crate::{Column, Table, Task};

/// `n` rows: numeric `x1..x4` (x2 has ~10% missing), categorical `colour` (5 levels, ~5% missing) and
/// `size` (3 levels), and a `target` for `task` (binary `yes`/`no`, three classes `a`/`b`/`c`, or a
/// real value).
pub fn mixed_table(task: Task, n: usize, seed: u64) -> Table {
    let mut r = Rng::new(seed);
    let colours = ["red", "green", "blue", "black", "white"];
    let sizes = ["S", "M", "L"];
    let (mut x1, mut x2, mut x3, mut x4, mut colour, mut size, mut num_t, mut cat_t) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for _ in 0..n {
        let a = r.normal();
        let b = r.normal();
        let c = r.f64() * 4.0 - 2.0;
        let d = r.normal();
        let ci = r.below(5);
        let si = r.below(3);
        let colour_effect = [1.0, -0.5, 0.3, -1.2, 0.0][ci];
        let size_effect = [-0.5, 0.0, 0.5][si];
        let signal =
            1.2 * a - 0.8 * b + 0.6 * c * c - 1.0 + colour_effect + size_effect + 0.3 * a * d;
        let noise = 0.5 * r.normal();
        x1.push(a);
        x2.push(if r.f64() < 0.1 { f64::NAN } else { b });
        x3.push(c);
        x4.push(d);
        colour.push(if r.f64() < 0.05 {
            None
        } else {
            Some(colours[ci].to_string())
        });
        size.push(Some(sizes[si].to_string()));
        let s = signal + noise;
        num_t.push(10.0 + 3.0 * s);
        cat_t.push(match task {
            Task::BinaryClassification => if s > 0.0 { "yes" } else { "no" }.to_string(),
            _ => if s < -0.7 {
                "a"
            } else if s < 0.7 {
                "b"
            } else {
                "c"
            }
            .to_string(),
        });
    }
    let target = match task {
        Task::Regression => Column::numeric("target", num_t),
        _ => Column::categorical("target", cat_t.into_iter().map(Some).collect()),
    };
    Table::new(vec![
        Column::numeric("x1", x1),
        Column::numeric("x2", x2),
        Column::numeric("x3", x3),
        Column::numeric("x4", x4),
        Column::categorical("colour", colour),
        Column::categorical("size", size),
        target,
    ])
    .expect("columns of equal length")
}
