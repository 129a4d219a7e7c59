"""The reference that scripts/bench measures our content service against.

`GET /api/v1/content/{id}` written the way a team shipping FastAPI + SQLAlchemy 2 +
uvicorn would write it: the bearer token verified with PyJWT against the auth
service's JWKS (keys cached by PyJWKClient), a SQLAlchemy session per request from a
pooled engine, the ORM row turned into a Pydantic response model, the owner check in
the query (an admin reads everything), the version as ETag. It reads the content
service's own database (SQLite file or PostgreSQL), so both answer the same items.

Settings: REF_DATABASE_URL (sqlite:///path or postgresql+psycopg://…), REF_JWKS_URL,
REF_JWT_ISSUER, REF_JWT_AUDIENCE. Run with uvicorn, two workers (scripts/bench does).
"""

import json
import os
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import jwt
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, Integer, Text, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DATABASE_URL = os.environ["REF_DATABASE_URL"]
JWKS_URL = os.environ["REF_JWKS_URL"]
ISSUER = os.environ.get("REF_JWT_ISSUER", "peermesh-auth")
AUDIENCE = os.environ.get("REF_JWT_AUDIENCE", "peermesh")

if DATABASE_URL.startswith("sqlite"):
    engine = create_engine(
        DATABASE_URL, pool_size=8, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(conn, _record):
        cur = conn.cursor()
        cur.execute("PRAGMA busy_timeout = 5000")
        cur.close()

else:
    engine = create_engine(DATABASE_URL, pool_size=8, pool_pre_ping=True)

SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class ContentItem(Base):
    __tablename__ = "content_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    body_bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[str] = mapped_column("metadata", Text)
    source_type: Mapped[Optional[str]] = mapped_column(Text)
    source_url: Mapped[Optional[str]] = mapped_column(Text)
    source_filename: Mapped[Optional[str]] = mapped_column(Text)
    source_sha256: Mapped[Optional[str]] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SourceOut(BaseModel):
    type: str
    url: Optional[str] = None
    filename: Optional[str] = None
    sha256: Optional[str] = None


class ItemOut(BaseModel):
    id: str
    owner_id: str
    title: str
    body: str
    size: int
    kind: str
    tags: list[str]
    source: Optional[SourceOut] = None
    metadata: dict[str, Any]
    version: int
    created_at: str
    updated_at: str


def rfc3339(t: datetime) -> str:
    return t.replace(tzinfo=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def item_out(row: ContentItem) -> ItemOut:
    source = None
    if row.source_type is not None:
        source = SourceOut(
            type=row.source_type,
            url=row.source_url,
            filename=row.source_filename,
            sha256=row.source_sha256,
        )
    return ItemOut(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        body=row.body,
        size=row.body_bytes,
        kind=row.kind,
        tags=json.loads(row.tags),
        source=source,
        metadata=json.loads(row.metadata_),
        version=row.version,
        created_at=rfc3339(row.created_at),
        updated_at=rfc3339(row.updated_at),
    )


jwks_client = jwt.PyJWKClient(JWKS_URL, cache_keys=True, lifespan=900)
bearer = HTTPBearer(auto_error=False)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_claims(
    creds: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)],
) -> dict[str, Any]:
    if creds is None:
        raise unauthorized("a bearer token is required")
    try:
        key = jwks_client.get_signing_key_from_jwt(creds.credentials)
        claims = jwt.decode(
            creds.credentials,
            key.key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=5,
            options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as err:
        raise unauthorized(str(err)) from err
    if claims.get("typ") != "access":
        raise unauthorized("not an access token")
    return claims


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


app = FastAPI(title="content reference", docs_url=None, redoc_url=None)


@app.get("/api/v1/content/{item_id}", response_model=ItemOut)
def get_item(
    item_id: str,
    response: Response,
    claims: Annotated[dict[str, Any], Depends(current_claims)],
    db: Annotated[Session, Depends(get_db)],
) -> ItemOut:
    query = select(ContentItem).where(ContentItem.id == item_id)
    if "admin" not in claims.get("roles", []):
        query = query.where(ContentItem.owner_id == claims["sub"])
    row = db.scalars(query).first()
    if row is None:
        raise HTTPException(status_code=404, detail="no such item")
    response.headers["ETag"] = f'"{row.version}"'
    return item_out(row)
