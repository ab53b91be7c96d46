"""Runs Cadenza's ClickHouse DDL, sample inserts and queries in chdb (a current ClickHouse engine,
in-process), so CI proves the SQL that runs on Debian's 18.16 also runs on today's releases.

Reads a JSON payload {database, statements, inserts: [{table, columns, tsv}], queries: {name: sql}}
from the file named on the command line and prints {name: rows | {"error": text}} as JSON."""
import json
import sys

import chdb
from chdb import session as chs


def main() -> None:
    payload = json.load(open(sys.argv[1], encoding="utf-8"))
    db = payload["database"]
    sess = chs.Session()
    out = {"engine": chdb.engine_version if hasattr(chdb, "engine_version") else chdb.__version__}
    try:
        sess.query(f"CREATE DATABASE IF NOT EXISTS {db}")
        sess.query(f"USE {db}")
        for statement in payload["statements"]:
            sess.query(statement)
        for ins in payload["inserts"]:
            cols = ", ".join(ins["columns"])
            sess.query(f"INSERT INTO {ins['table']} ({cols}) FORMAT TabSeparated\n{ins['tsv']}")
        results = {}
        for name, sql in payload["queries"].items():
            try:
                text = sess.query(sql, "JSONEachRow").bytes().decode("utf-8")
                results[name] = [json.loads(line) for line in text.splitlines() if line.strip()]
            except Exception as err:  # report per query; the test names the failing one
                results[name] = {"error": str(err)}
        out["results"] = results
    except Exception as err:
        out["fatal"] = str(err)
    finally:
        sess.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
