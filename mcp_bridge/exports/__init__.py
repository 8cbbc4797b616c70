"""Background CSV exports of a site's customers or invoices (Celery), and their tools.

Public API:
- `tools`: the `start_export` / `get_export` tools (importing it registers them) and
  `register_export_resource(server)`, which serves finished files as
  `pelcro://exports/{job_id}` (text/csv) to the connection that started them;
- `tasks`: `run_export` (retried on the limiter's "retry in N s") and
  `delete_expired_exports` (beat);
- `jobs`: the job functions behind them (`create_export`, `run_export`, `fail_export`,
  `progress`, `job_for_connection`, `read_finished_export`, `delete_expired_exports`,
  `ExportNotFound`).
"""

from mcp_bridge.exports import jobs, tasks, tools
from mcp_bridge.exports.tools import register_export_resource

__all__ = ["jobs", "register_export_resource", "tasks", "tools"]
