"""Operator routes for reading files: a reading route's CSV in one request, and its result again later."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_response

from controllers import reading_file_controller
from controllers.reading_file_controller import ReadingFileResult
from routes.body_limits import large_body
from routes.common import csv_upload, db, problems, request_tenant, require_principal, role_required, uploaded_file
from routes.vocabulary import ReadingFileOutcome

# A reading route's CSV runs about 50 bytes a row: 32 MiB holds some 600 000 rows.
READING_FILE_BYTES = 32 * 1024 * 1024

bp = Blueprint("reading_files", __name__, url_prefix="/api/v1")


class ReadingFileIssueOut(BaseModel):
    """A row that stored nothing: rejected with the single reading route's reason code, or an observation."""

    line: int = Field(description="The row's line in the file; the header is line 1.")
    serial: str
    period: str
    outcome: ReadingFileOutcome
    code: str = Field(description="`reading_exists`, `register_decreased`, ... or the observation, e.g. `not_accessible`.")
    message: str


class ReadingFileOut(BaseModel):
    """A reading file's result: counts, and every row that stored nothing, by line."""

    id: int
    sha256: str = Field(description="The file's SHA-256: the same file again answers with this result.")
    rows: int
    accepted: int
    rejected: int
    observed: int
    created_by: int | None
    created_at: datetime
    issues: list[ReadingFileIssueOut]


def reading_file_out(result: ReadingFileResult) -> ReadingFileOut:
    """Serialise a reading file's result."""
    record = result.file
    return ReadingFileOut(
        id=record.id, sha256=record.sha256, rows=record.row_count, accepted=record.accepted,
        rejected=record.rejected, observed=record.observed, created_by=record.created_by,
        created_at=record.created_at,
        issues=[ReadingFileIssueOut.model_validate(issue, from_attributes=True) for issue in result.issues],
    )


@bp.post("/reading-files")
@large_body(READING_FILE_BYTES)
@role_required("operator")
@csv_upload
@validate_response(ReadingFileOut, 201)
@validate_response(ReadingFileOut, 200)
@problems(409, 413, 422)
async def create_reading_file() -> tuple[ReadingFileOut, int]:
    """Take in a reading route's CSV: valid rows are stored, the others listed by line; a resent file answers 200."""
    principal = await require_principal()
    result = await reading_file_controller.import_reading_file(
        session=db(), tenant=principal.tenant, user_id=principal.user.id, content=await uploaded_file()
    )
    return reading_file_out(result), 201 if result.created else 200


@bp.get("/reading-files/<int:file_id>")
@role_required("operator")
@validate_response(ReadingFileOut, 200)
@problems(404)
async def get_reading_file(file_id: int) -> ReadingFileOut:
    """A reading file's result again."""
    result = await reading_file_controller.get_reading_file(session=db(), tenant=await request_tenant(), file_id=file_id)
    return reading_file_out(result)
