//! The trainer's one error type. Messages are written for the person who started the experiment: each
//! says what is wrong with the data or the settings and what to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the CSV file has a problem at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("the table is empty: it needs a header and at least one row")]
    EmptyTable,
    #[error("column `{name}` appears twice; give every column a distinct name")]
    DuplicateColumn { name: String },
    #[error("column `{name}` has {got} values but the table has {expected} rows")]
    RaggedColumn {
        name: String,
        got: usize,
        expected: usize,
    },
    #[error("target column `{target}` is not in the table; its columns are: {available}")]
    TargetMissing { target: String, available: String },
    #[error("the target column `{target}` has only one class ({class}) in the rows that have a target; a classifier needs at least two")]
    SingleClass { target: String, class: String },
    #[error("the target column `{target}` has the same value ({value}) in every row; there is nothing to predict")]
    ConstantTarget { target: String, value: f64 },
    #[error("the target column `{target}` has {classes} classes; at most {max} are supported for classification (did you mean regression?)")]
    TooManyClasses {
        target: String,
        classes: usize,
        max: usize,
    },
    #[error("regression needs a numeric target, but `{target}` holds text (for example {example:?}); choose a classification task or a numeric column")]
    NonNumericTarget { target: String, example: String },
    #[error("too few rows to train: {rows} rows have a target, at least {min} are needed")]
    TooFewRows { rows: usize, min: usize },
    #[error(
        "class `{class}` of the target has only {rows} row(s); every class needs at least {min}"
    )]
    RareClass {
        class: String,
        rows: usize,
        min: usize,
    },
    #[error("there are no feature columns besides the target `{target}`")]
    NoFeatures { target: String },
    #[error("unknown stopping metric `{metric}` for {task}; use one of: {allowed}")]
    UnknownMetric {
        metric: String,
        task: &'static str,
        allowed: String,
    },
    #[error("invalid setting `{field}`: {message}")]
    InvalidConfig {
        field: &'static str,
        message: String,
    },
    #[error("the experiment was cancelled")]
    Cancelled,
    #[error("LightGBM failed: {0}")]
    LightGbm(String),
    #[error("could not read the LightGBM model text: {0}")]
    ModelDump(String),
    #[error("could not build the ONNX graph: {0}")]
    Export(String),
    #[error("prediction input does not match the model: {0}")]
    BadInput(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
