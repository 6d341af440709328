//! `strata run RECIPE --spark sc://HOST:PORT`: the recipe's Spark SQL (`strata sql --dialect
//! spark`) runs in a Spark Connect session, where the records are; only the two aggregated
//! results come back, as Arrow IPC batches. They are written as the CSV files `--counts` and
//! `--quality` read (the same text a `strata sql` export gives), so everything after them is the
//! pushed-down run's code path, byte for byte.
//!
//! The client is Apache's Spark Connect transport (`apache-spark-connect-core`) and its generated
//! protocol (`apache-spark-connect-proto`); the Arrow IPC it returns is read with the workspace's
//! own arrow-ipc, so no second Arrow version is built.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use arrow_array::{Array, ArrayRef, RecordBatch, cast::AsArray, types};
use arrow_schema::DataType;
use spark_connect_core::{ChannelBuilder, RetryPolicy, SparkConnectClient, SparkError};
use spark_connect_proto as proto;

use crate::sql::Script;
use crate::{Error, Result};

/// The two files written into `dir` (which must not exist yet: strata makes it): `counts.csv`
/// and `quality.csv`, each the Arrow result of its query over Spark Connect at `url`.
pub fn fetch(url: &str, script: &Script, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let mut builder =
        ChannelBuilder::parse(url).map_err(|e| remote(url, "connection string", &e))?;
    // The server keys a session by user and session id: every request (plans, configuration)
    // carries the same user, the connection string's or `strata`.
    if builder.user_id().is_none() {
        builder.set("user_id", "strata");
    }
    spark_connect_core::block_on(async {
        let mut client = SparkConnectClient::connect(&builder)
            .await
            .map_err(|e| remote(url, "connect", &e))?;
        // A server that is down fails at once (the channel already bounds its own wait).
        client.set_retry_policy(RetryPolicy::no_retries());
        // The record-level reader takes a TIMESTAMP's date in UTC, whatever its zone; Spark's
        // TO_DATE takes it in the session's zone, so the session is set to UTC.
        client
            .set_config("spark.sql.session.timeZone", "UTC")
            .await
            .map_err(|e| remote(url, "setting the session time zone to UTC", &e))?;
        for (i, statement) in script.setup_statements.iter().enumerate() {
            let what = format!("setup statement {} (reference lookups)", i + 1);
            execute(&client, url, &what, command_plan(statement)).await?;
        }
        std::fs::create_dir(dir).map_err(|e| Error::output(dir, e))?;
        let mut files = Vec::new();
        for (name, query) in [("counts", &script.counts), ("quality", &script.quality)] {
            let batches = execute(&client, url, name, root_plan(query)).await?;
            let path = dir.join(format!("{name}.csv"));
            let text = csv_text(&batches).map_err(|rule| Error::Remote {
                endpoint: url.to_string(),
                message: format!("the {name} query's result: {rule}"),
            })?;
            std::fs::write(&path, text).map_err(|e| Error::output(&path, e))?;
            files.push(path);
        }
        // The session's temporary views go with it; a failure to release changes no result.
        client.release_session().await.ok();
        Ok((files[0].clone(), files[1].clone()))
    })
}

fn remote(url: &str, step: &str, e: &SparkError) -> Error {
    Error::Remote {
        endpoint: url.to_string(),
        message: format!("{step}: {e}"),
    }
}

/// A query whose rows come back (`spark.sql(text)` then `collect()` in PySpark).
fn root_plan(query: &str) -> proto::Plan {
    proto::Plan {
        op_type: Some(proto::plan::OpType::Root(sql_relation(query))),
    }
}

/// A statement run for its effect, as PySpark's `spark.sql` sends one (a `SqlCommand`).
fn command_plan(statement: &str) -> proto::Plan {
    let command = proto::SqlCommand {
        input: Some(sql_relation(statement)),
        ..Default::default()
    };
    proto::Plan {
        op_type: Some(proto::plan::OpType::Command(proto::Command {
            command_type: Some(proto::command::CommandType::SqlCommand(command)),
        })),
    }
}

fn sql_relation(text: &str) -> proto::Relation {
    // Spark's parser takes one statement without its terminator.
    let query = text.trim().trim_end_matches(';').to_string();
    proto::Relation {
        common: None,
        rel_type: Some(proto::relation::RelType::Sql(proto::Sql {
            query,
            ..Default::default()
        })),
    }
}

/// Runs one plan in the client's session and answers the record batches of its result.
async fn execute(
    client: &SparkConnectClient,
    url: &str,
    what: &str,
    plan: proto::Plan,
) -> Result<Vec<RecordBatch>> {
    let request = proto::ExecutePlanRequest {
        session_id: client.session_id().to_string(),
        user_context: Some(proto::UserContext {
            user_id: client.user_id().unwrap_or_default().into(),
            user_name: "strata".into(),
            ..Default::default()
        }),
        plan: Some(plan),
        client_type: Some(format!("strata/{}", env!("CARGO_PKG_VERSION"))),
        ..Default::default()
    };
    let mut stream = client
        .execute_plan(request)
        .await
        .map_err(|e| remote(url, what, &e))?;
    let mut batches = Vec::new();
    loop {
        let response = match stream.message().await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(status) => return Err(remote(url, what, &SparkError::from_grpc_status(status))),
        };
        if let Some(proto::execute_plan_response::ResponseType::ArrowBatch(arrow)) =
            response.response_type
        {
            batches.extend(arrow_batches(&arrow.data).map_err(|e| Error::Remote {
                endpoint: url.to_string(),
                message: format!("{what}: an Arrow batch that does not read: {e}"),
            })?);
        }
    }
    Ok(batches)
}

/// One `ArrowBatch` message: an Arrow IPC stream (schema, then its batches).
fn arrow_batches(data: &[u8]) -> std::result::Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    arrow_ipc::reader::StreamReader::try_new(Cursor::new(data), None)?.collect()
}

/// The batches as CSV with a header: text as it is, whole numbers in decimal, NULL as an empty
/// field (as DuckDB's and Spark's own CSV writers give them). A column of any other type (e.g. a
/// DECIMAL or DOUBLE from a division) is refused: the counts are whole numbers.
fn csv_text(batches: &[RecordBatch]) -> std::result::Result<Vec<u8>, String> {
    let Some(first) = batches.first() else {
        return Err("no rows and no schema came back".into());
    };
    let schema = first.schema();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    writer.write_record(&names).map_err(|e| e.to_string())?;
    for batch in batches {
        let columns: Vec<Vec<String>> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| column_text(c).map_err(|t| format!("column `{}` is {t}", f.name())))
            .collect::<std::result::Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            writer
                .write_record(columns.iter().map(|c| &c[row]))
                .map_err(|e| e.to_string())?;
        }
    }
    writer.into_inner().map_err(|e| e.to_string())
}

/// One column's fields as text, or the type it has when it is neither text nor whole numbers.
fn column_text(column: &ArrayRef) -> std::result::Result<Vec<String>, String> {
    macro_rules! fields {
        ($array:expr) => {{
            let a = $array;
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        String::new()
                    } else {
                        a.value(i).to_string()
                    }
                })
                .collect()
        }};
    }
    Ok(match column.data_type() {
        DataType::Utf8 => fields!(column.as_string::<i32>()),
        DataType::LargeUtf8 => fields!(column.as_string::<i64>()),
        DataType::Utf8View => fields!(column.as_string_view()),
        DataType::Int8 => fields!(column.as_primitive::<types::Int8Type>()),
        DataType::Int16 => fields!(column.as_primitive::<types::Int16Type>()),
        DataType::Int32 => fields!(column.as_primitive::<types::Int32Type>()),
        DataType::Int64 => fields!(column.as_primitive::<types::Int64Type>()),
        DataType::Null => vec![String::new(); column.len()],
        other => return Err(format!("{other}, not text or a whole number")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int32Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    #[test]
    fn batches_become_the_csv_an_export_gives() {
        let a = batch(vec![
            (
                "area_code",
                Arc::new(StringArray::from(vec![Some("A01"), None])) as ArrayRef,
            ),
            ("month", Arc::new(Int32Array::from(vec![None, Some(11)]))),
            ("tests", Arc::new(Int64Array::from(vec![3_000_000_000, 0]))),
        ]);
        let b = batch(vec![
            (
                "area_code",
                Arc::new(StringArray::from(vec!["A, B"])) as ArrayRef,
            ),
            ("month", Arc::new(Int32Array::from(vec![0]))),
            ("tests", Arc::new(Int64Array::from(vec![7]))),
        ]);
        let text = String::from_utf8(csv_text(&[a, b]).expect("csv")).expect("utf8");
        assert_eq!(
            text,
            "area_code,month,tests\nA01,,3000000000\n,11,0\n\"A, B\",0,7\n"
        );
    }

    #[test]
    fn a_fractional_column_is_refused_by_name() {
        let a = batch(vec![(
            "tests",
            Arc::new(Float64Array::from(vec![1.5])) as ArrayRef,
        )]);
        let e = csv_text(&[a]).expect_err("refused");
        assert!(e.contains("`tests`") && e.contains("Float64"), "{e}");
    }

    #[test]
    fn an_ipc_stream_reads_back() {
        let a = batch(vec![(
            "tests",
            Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
        )]);
        let mut bytes = Vec::new();
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &a.schema()).unwrap();
        w.write(&a).unwrap();
        w.finish().unwrap();
        drop(w);
        let back = arrow_batches(&bytes).expect("reads");
        assert_eq!(back, vec![a]);
    }

    #[test]
    fn a_bad_connection_string_is_refused() {
        let script = Script {
            setup: String::new(),
            setup_statements: vec![],
            counts: String::new(),
            quality: String::new(),
        };
        let dir = std::env::temp_dir().join("strata-spark-never-made");
        let e = fetch("http://nowhere", &script, &dir).expect_err("refused");
        assert!(matches!(e, Error::Remote { .. }), "{e}");
        assert!(!dir.exists());
    }
}
