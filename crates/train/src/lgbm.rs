//! LightGBM through the C API that `lightgbm3` builds (its `lightgbm3-sys` layer).
//!
//! Why not `lightgbm3::Booster::train_with_valid`: its datasets are created without parameters, so
//! categorical columns cannot be declared; its training loop cannot be stopped at a deadline or
//! cancelled; and datasets cannot be shared between the many models of a search. This module keeps the
//! same vendored library and calls it directly, with handles freed on drop.

use crate::data::Matrix;
use crate::{Error, Result};
use lightgbm3_sys as sys;
use std::ffi::{c_void, CStr, CString};
use std::time::Instant;

const DTYPE_FLOAT32: i32 = 0;
const DTYPE_FLOAT64: i32 = 1;
const PREDICT_RAW_SCORE: i32 = 1;

fn check(code: i32) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let msg = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) }
        .to_string_lossy()
        .into_owned();
    Err(Error::LightGbm(msg))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::LightGbm("a parameter contains a NUL byte".into()))
}

/// A binned training or validation set.
pub(crate) struct LgbDataset {
    handle: sys::DatasetHandle,
}

// The handle is only used from one thread at a time (the owner holds `&mut` or `&` around FFI calls
// that LightGBM documents as thread-safe for reading).
unsafe impl Send for LgbDataset {}
unsafe impl Sync for LgbDataset {}

impl LgbDataset {
    /// `params` are LightGBM dataset parameters (`max_bin=255 categorical_feature=0,3 …`). A validation
    /// set passes its training set as `reference` so both share bin boundaries.
    pub fn new(
        x: &Matrix,
        y: &[f64],
        params: &str,
        reference: Option<&LgbDataset>,
    ) -> Result<LgbDataset> {
        if x.n == 0 {
            return Err(Error::LightGbm("no rows to train on".into()));
        }
        let p = cstring(params)?;
        let mut handle = std::ptr::null_mut();
        check(unsafe {
            sys::LGBM_DatasetCreateFromMat(
                x.data.as_ptr() as *const c_void,
                DTYPE_FLOAT64,
                x.n as i32,
                x.f as i32,
                1,
                p.as_ptr(),
                reference.map(|r| r.handle).unwrap_or(std::ptr::null_mut()),
                &mut handle,
            )
        })?;
        let ds = LgbDataset { handle };
        let label: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let field = cstring("label")?;
        check(unsafe {
            sys::LGBM_DatasetSetField(
                ds.handle,
                field.as_ptr(),
                label.as_ptr() as *const c_void,
                label.len() as i32,
                DTYPE_FLOAT32,
            )
        })?;
        Ok(ds)
    }
}

impl Drop for LgbDataset {
    fn drop(&mut self) {
        unsafe {
            sys::LGBM_DatasetFree(self.handle);
        }
    }
}

pub(crate) struct LgbBooster {
    handle: sys::BoosterHandle,
}

unsafe impl Send for LgbBooster {}

impl Drop for LgbBooster {
    fn drop(&mut self) {
        unsafe {
            sys::LGBM_BoosterFree(self.handle);
        }
    }
}

impl LgbBooster {
    pub fn from_string(model: &str) -> Result<LgbBooster> {
        let s = cstring(model)?;
        let mut iters = 0;
        let mut handle = std::ptr::null_mut();
        check(unsafe {
            sys::LGBM_BoosterLoadModelFromString(s.as_ptr(), &mut iters, &mut handle)
        })?;
        Ok(LgbBooster { handle })
    }

    pub fn iterations(&self) -> Result<usize> {
        let mut it = 0;
        check(unsafe { sys::LGBM_BoosterGetCurrentIteration(self.handle, &mut it) })?;
        Ok(it as usize)
    }

    /// The model text (`save_model_to_string`): what the ONNX writer reads.
    pub fn save_string(&self) -> Result<String> {
        let mut len = 0i64;
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.handle,
                0,
                -1,
                0,
                0,
                &mut len,
                std::ptr::null_mut(),
            )
        })?;
        let mut buf = vec![0u8; len as usize];
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.handle,
                0,
                -1,
                0,
                len,
                &mut len,
                buf.as_mut_ptr() as *mut std::os::raw::c_char,
            )
        })?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        buf.truncate(end);
        String::from_utf8(buf).map_err(|e| Error::LightGbm(e.to_string()))
    }

    /// Raw scores, row-major `n × trees_per_iteration`. Random forests (`average`) divide the sum by the
    /// number of iterations: LightGBM's raw-score prediction sums, and averages only in its transformed
    /// prediction.
    pub fn predict_raw(&self, x: &Matrix, k: usize, average: bool) -> Result<Vec<f64>> {
        let mut out = vec![0.0; x.n * k];
        if x.n == 0 {
            return Ok(out);
        }
        let params = cstring("")?;
        let mut len = 0i64;
        check(unsafe {
            sys::LGBM_BoosterPredictForMat(
                self.handle,
                x.data.as_ptr() as *const c_void,
                DTYPE_FLOAT64,
                x.n as i32,
                x.f as i32,
                1,
                PREDICT_RAW_SCORE,
                0,
                -1,
                params.as_ptr(),
                &mut len,
                out.as_mut_ptr(),
            )
        })?;
        if len as usize != out.len() {
            return Err(Error::LightGbm(format!(
                "expected {} scores, got {len}",
                out.len()
            )));
        }
        if average {
            let it = self.iterations()?.max(1) as f64;
            out.iter_mut().for_each(|v| *v /= it);
        }
        Ok(out)
    }
}

/// How a training run ends early: a deadline, and a check (cancellation) run at most every 200 ms.
pub(crate) struct Control<'a> {
    pub deadline: Option<Instant>,
    pub check: &'a mut dyn FnMut() -> Result<()>,
}

impl Control<'_> {
    pub fn past_deadline(&self) -> bool {
        self.deadline.map(|d| Instant::now() >= d).unwrap_or(false)
    }

    /// Called after every boosting round: asks whether to go on (cancellation) at most every
    /// 200 ms, and says whether the deadline has passed.
    fn after_round(&mut self, last_check: &mut Instant) -> Result<bool> {
        if last_check.elapsed().as_millis() >= 200 {
            (self.check)()?;
            *last_check = Instant::now();
        }
        Ok(self.past_deadline())
    }
}

pub(crate) struct TrainOutcome {
    pub booster: LgbBooster,
    pub stopped_by_deadline: bool,
}

/// Trains up to `max_iter` iterations. With `valid` and `patience`, stops once the validation metric
/// (the first in `params`' `metric`) has not improved for `patience` iterations and rolls back to the
/// best iteration; at the deadline it also keeps the best iteration so far.
pub(crate) fn train(
    train: &LgbDataset,
    valid: Option<&LgbDataset>,
    params: &str,
    max_iter: usize,
    patience: Option<usize>,
    higher_is_better: bool,
    ctl: &mut Control<'_>,
) -> Result<TrainOutcome> {
    let p = cstring(params)?;
    let mut handle = std::ptr::null_mut();
    check(unsafe { sys::LGBM_BoosterCreate(train.handle, p.as_ptr(), &mut handle) })?;
    let booster = LgbBooster { handle };
    if let Some(v) = valid {
        check(unsafe { sys::LGBM_BoosterAddValidData(booster.handle, v.handle) })?;
    }
    let mut best: Option<(f64, usize)> = None;
    let mut done = 0usize;
    let mut stopped_by_deadline = false;
    let mut last_check = Instant::now();
    let mut evals = vec![0.0f64; 8];
    while done < max_iter.max(1) {
        let mut finished = 0;
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(booster.handle, &mut finished) })?;
        if finished != 0 {
            // No split was possible: the empty iteration is kept out of the model by LightGBM.
            break;
        }
        done += 1;
        if valid.is_some() {
            let mut n = 0;
            check(unsafe {
                sys::LGBM_BoosterGetEval(booster.handle, 1, &mut n, evals.as_mut_ptr())
            })?;
            if n > 0 {
                let score = evals[0];
                let better = match best {
                    None => true,
                    Some((b, _)) => {
                        if higher_is_better {
                            score > b
                        } else {
                            score < b
                        }
                    }
                };
                if better {
                    best = Some((score, done));
                } else if let (Some(pat), Some((_, at))) = (patience, best) {
                    if done - at >= pat {
                        break;
                    }
                }
            }
        }
        if ctl.after_round(&mut last_check)? {
            stopped_by_deadline = true;
            break;
        }
    }
    let mut kept = done;
    if patience.is_some() {
        if let Some((_, at)) = best {
            while kept > at {
                check(unsafe { sys::LGBM_BoosterRollbackOneIter(booster.handle) })?;
                kept -= 1;
            }
        }
    }
    Ok(TrainOutcome {
        booster,
        stopped_by_deadline,
    })
}

/// Cross-validated boosting: trains one booster per fold (`(train, valid)` pairs) in lockstep until
/// the mean of the folds' validation losses (the first metric in `params`, lower is better) has not
/// improved for `patience` rounds, as LightGBM's and XGBoost's `cv` do. The count that minimises that
/// mean is the one the model refitted on all rows uses. Each fold's booster is cut at the count that
/// minimises the mean over the *other* folds, so no fold's out-of-fold predictions are tuned on the
/// rows they are scored on: with a few hundred rows, picking the count on those rows made boosted
/// models look better in cross-validation than on new data. Returns the boosters (each rolled back to
/// its count), the count for the refit, and whether the deadline stopped training.
pub(crate) fn train_cv(
    folds: &[(&LgbDataset, &LgbDataset)],
    params: &str,
    max_iter: usize,
    patience: usize,
    ctl: &mut Control<'_>,
) -> Result<(Vec<LgbBooster>, usize, bool)> {
    let p = cstring(params)?;
    let mut boosters = Vec::new();
    for (tr, va) in folds {
        let mut handle = std::ptr::null_mut();
        check(unsafe { sys::LGBM_BoosterCreate(tr.handle, p.as_ptr(), &mut handle) })?;
        let b = LgbBooster { handle };
        check(unsafe { sys::LGBM_BoosterAddValidData(b.handle, va.handle) })?;
        boosters.push(b);
    }
    let k = boosters.len();
    let mut finished = vec![false; k];
    // Validation loss per round, fold by fold: curves[round][fold].
    let mut curves: Vec<Vec<f64>> = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    let mut stopped_by_deadline = false;
    let mut last_check = Instant::now();
    let mut evals = vec![0.0f64; 8];
    while curves.len() < max_iter.max(1) && finished.iter().any(|f| !f) {
        let mut round = Vec::with_capacity(k);
        for (b, fin) in boosters.iter().zip(finished.iter_mut()) {
            if !*fin {
                let mut f = 0;
                check(unsafe { sys::LGBM_BoosterUpdateOneIter(b.handle, &mut f) })?;
                // No split was possible: this fold's model stays as it is.
                *fin = f != 0;
            }
            let mut n = 0;
            check(unsafe { sys::LGBM_BoosterGetEval(b.handle, 1, &mut n, evals.as_mut_ptr()) })?;
            round.push(if n > 0 { evals[0] } else { f64::NAN });
        }
        let loss = round.iter().sum::<f64>() / k as f64;
        curves.push(round);
        let done = curves.len();
        if best.map(|(b, _)| loss < b).unwrap_or(true) && loss.is_finite() {
            best = Some((loss, done));
        } else if let Some((_, at)) = best {
            if done - at >= patience {
                break;
            }
        }
        if ctl.after_round(&mut last_check)? {
            stopped_by_deadline = true;
            break;
        }
    }
    let keep = best.map(|b| b.1).unwrap_or(curves.len()).max(1);
    for (b, own) in boosters.iter().zip(rounds_left_out(&curves, keep)) {
        while b.iterations()? > own {
            check(unsafe { sys::LGBM_BoosterRollbackOneIter(b.handle) })?;
        }
    }
    Ok((boosters, keep, stopped_by_deadline))
}

/// For each fold, the round (counted from 1) with the lowest mean validation loss over the other
/// folds (`curves[round][fold]`); `fallback` where there is none (a single fold, no finite loss).
fn rounds_left_out(curves: &[Vec<f64>], fallback: usize) -> Vec<usize> {
    let k = curves.first().map(Vec::len).unwrap_or(0);
    if k < 2 {
        return vec![fallback; k];
    }
    (0..k)
        .map(|f| {
            let mut best: Option<(f64, usize)> = None;
            for (i, round) in curves.iter().enumerate() {
                let others: f64 = round
                    .iter()
                    .enumerate()
                    .filter(|&(g, _)| g != f)
                    .map(|(_, l)| l)
                    .sum();
                if others.is_finite() && best.map(|(b, _)| others < b).unwrap_or(true) {
                    best = Some((others, i + 1));
                }
            }
            best.map(|(_, at)| at).unwrap_or(fallback)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rounds_left_out;

    #[test]
    fn each_folds_round_count_comes_from_the_other_folds() {
        // Three folds over four rounds. Fold 0's own loss is lowest at round 4, the others' at
        // round 2: fold 0 is cut at round 2, and the other folds where the rest do best.
        let curves = vec![
            vec![0.9, 0.50, 0.50],
            vec![0.8, 0.30, 0.30],
            vec![0.7, 0.35, 0.34],
            vec![0.1, 0.40, 0.40],
        ];
        assert_eq!(rounds_left_out(&curves, 9), vec![2, 4, 4]);
        // One fold: nothing to leave it out of.
        assert_eq!(rounds_left_out(&[vec![0.5], vec![0.4]], 2), vec![2]);
    }
}
