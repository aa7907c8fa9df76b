"""SQL macros shared by every source's normalisation query.

Registered once per DuckDB connection by `register(con)`. Connections used for ingest
run with `TimeZone = 'UTC'`, so a timestamp without a zone is read as UTC.
"""

from __future__ import annotations

import duckdb

MACROS = [
    # Text of a JSON value: strings unquoted, other values as JSON text, JSON null -> NULL.
    """
    CREATE OR REPLACE MACRO sentinel_text(v) AS
        CASE WHEN v IS NULL OR json_type(v) = 'NULL' THEN NULL
             WHEN json_type(v) = 'VARCHAR' THEN v ->> '$'
             ELSE CAST(v AS VARCHAR) END
    """,
    # Epoch seconds (int/float/numeric string), epoch milliseconds (> 1e11), ISO-8601 with
    # or without zone, and 'YYYY-MM-DD HH:MM:SS.ffffff' -> TIMESTAMPTZ. NULL if none fits.
    # Out-of-range epochs give NULL (the record is rejected), not an error for the batch.
    """
    CREATE OR REPLACE MACRO sentinel_epoch(x) AS
        CASE WHEN x IS NULL OR NOT isfinite(x) OR abs(x) > 1e14 THEN NULL
             WHEN abs(x) > 1e11 THEN to_timestamp(x / 1000.0)
             ELSE to_timestamp(x) END
    """,
    """
    CREATE OR REPLACE MACRO sentinel_ts(v) AS
        CASE WHEN v IS NULL OR json_type(v) = 'NULL' THEN NULL
             WHEN json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')
                 THEN sentinel_epoch(TRY_CAST(CAST(v AS VARCHAR) AS DOUBLE))
             WHEN json_type(v) = 'VARCHAR' THEN
                 CASE WHEN regexp_full_match(v ->> '$', '\\s*-?[0-9]+(\\.[0-9]+)?\\s*')
                          THEN sentinel_epoch(TRY_CAST(v ->> '$' AS DOUBLE))
                      ELSE TRY_CAST(v ->> '$' AS TIMESTAMPTZ) END
             ELSE NULL END
    """,
    # An AWS error code (CloudTrail `errorCode`, Bedrock invocation log `errorCode`) -> the
    # HTTP status AWS answers it with, by the code's documented family: NULL for a code
    # outside them (an unknown status is not guessed). Success is not decided here.
    """
    CREATE OR REPLACE MACRO sentinel_aws_status(code) AS
        CASE WHEN code IS NULL THEN NULL
             WHEN regexp_matches(code, 'AccessDenied|Unauthorized|Forbidden|NotAuthorized')
                 THEN 403
             WHEN regexp_matches(code, 'ExpiredToken|InvalidClientTokenId|SignatureDoesNotMatch'
                                       || '|IncompleteSignature|MissingAuthenticationToken')
                 THEN 401
             WHEN regexp_matches(code, 'NotFound|NoSuch') THEN 404
             WHEN regexp_matches(code, 'Throttl|TooManyRequests|RequestLimitExceeded'
                                       || '|ModelNotReady') THEN 429
             WHEN regexp_matches(code, 'Timeout') THEN 408
             WHEN regexp_matches(code, 'Conflict|AlreadyExists|InUse') THEN 409
             WHEN regexp_matches(code, 'ModelError') THEN 424
             WHEN regexp_matches(code, 'ServiceUnavailable') THEN 503
             WHEN regexp_matches(code, 'Internal') THEN 500
             WHEN regexp_matches(code, 'Validation|Invalid|Malformed|QuotaExceeded'
                                       || '|LimitExceeded|MissingParameter') THEN 400
        END
    """,
]


def register(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
