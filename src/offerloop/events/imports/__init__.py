"""CSV imports of buyers and orders, turned into Segment messages (the pure part: no I/O, no database).

``offerloop import buyers FILE.csv`` and ``offerloop import orders FILE.csv`` read a spreadsheet export,
turn every data row into one Segment-spec message (``identify`` for buyers, ``track`` for orders) and send
it through the ordinary ingestion path.  This module does the reading and the turning; the caller sends
``RowResult.message`` to ``/v1/batch`` and shows ``RowResult.errors``.

Idempotency
    Every message gets a deterministic ``messageId``: ``"import-"`` + the first 32 hex digits of
    ``sha256(workspace_salt, kind, revision, identity)`` (the parts joined with ``\\x1f``), where the
    identity of a buyer row is its user_id, else its normalised email, else its anonymous_id, and the
    identity of an order row is its order_id plus its status (completed or refunded).  The store keeps a
    messageId once per workspace, so importing the same file twice is harmless.

    The flip side: **re-importing a buyer row whose traits changed is a no-op**, because the row still
    maps to the messageId that is already stored.  The CLI therefore offers ``--revision TEXT``
    (``iter_rows(..., revision=...)``): a new revision mixes into every messageId, so the rows are sent
    again and their newer traits land.  The revision never changes userId / anonymousId, only messageId.
    Within one file, a second row with the same identity is refused (``duplicate_row``) rather than being
    silently dropped by the store.

Columns
    ``default_mapping(kind)`` maps every field to its accepted header names, separated by ``|``.  Header
    matching ignores case, whitespace and punctuation (``"E-mail"``, ``"e mail"`` and ``"EMAIL"`` are the
    same).  ``parse_mapping("email=E-mail Address,user_id=Customer ID", kind)`` overrides single fields;
    every field it does not name keeps its default synonyms.  Rules:

    * A field whose value is its default synonym list is optional: it is used when such a column exists.
    * A field mapped to anything else must name a column of the file (``a|b`` = the first of these that
      exists), otherwise ``MappingError``.  Explicit mappings are resolved before the defaults.
    * ``field=`` (empty) turns a field off: its column, if any, is then treated as an extra column.
    * ``ignore=Notes|Address`` drops columns entirely (e.g. personal data you do not want stored).
    * Buyers: every other column is carried into ``traits`` under its header snake_cased
      (``"Favourite Topic"`` -> ``favourite_topic``).  Orders: into ``properties`` the same way.
    * A column with an empty header is skipped; a value under it refuses the row (``unknown_column``).

    ``MappingError`` is raised by ``iter_rows`` itself, before any row is read, and lists every problem:
    names of absent columns, unknown fields, no identifier column (buyers: user_id, email or anonymous_id;
    orders: user_id or email), and for orders no order_id, amount or created_at column (an imported order
    without a total or a date is useless, and fixing it later would be a no-op, see above).

Rows
    A row either yields a message and no errors, or ``message=None`` and every problem found in it.  Row
    numbers are the ones a spreadsheet shows: the header is row 1, the first data row is row 2 (a quoted
    value that spans lines is still one row; blank rows are skipped but counted).  ``RowError.column`` is
    the header as written in the file.  Empty cells never erase anything: they are simply left out.

    Error codes: ``missing_required``, ``invalid_email``, ``invalid_amount``, ``invalid_currency``,
    ``invalid_timestamp``, ``invalid_boolean``, ``invalid_status``, ``junk_identifier`` (every identifier
    present is a placeholder such as ``null``, ``guest``, ``0``, ``n/a`` or the all-zero UUID),
    ``invalid_identifier`` (longer than 255 characters), ``invalid_phone``, ``invalid_characters`` (a NUL
    character, which ingestion would quarantine), ``no_identifier``, ``unknown_column`` (cells
    beyond the header, or under an empty header), ``duplicate_row`` and ``malformed_row`` (broken CSV
    quoting).

    One source of truth: placeholders, id lengths and e-mail addresses are decided by
    ``offerloop.core.identifiers`` and currencies with their minor units by ``offerloop.core.currencies``,
    the same functions ingestion, identity look-ups and checkout use, so a row the import accepts is
    never quarantined by ingestion for its identifiers, and an amount books the same minor units as a
    checkout in that currency.

    Phone numbers and platform ids (TikTok, Instagram, Stripe customer) follow the same rules as
    identifiers: a placeholder (``n/a``, ``null``...) is left out, a phone identity resolution would not
    read as one (fewer than 7 or more than 15 digits) is ``invalid_phone``, an id over 255 characters is
    ``invalid_identifier``.

Buyers -> ``identify``
    ``userId`` is the user_id; ``anonymousId`` is the anonymous_id column when given, otherwise, for a row
    identified only by its email, ``"import:" + sha256(workspace_salt + email)[:24]`` (stable across
    revisions, so the same email always lands on the same anonymous buyer).  Traits use the Segment
    reserved names where Segment has one (``email``, ``phone``, ``firstName``, ``lastName``, ``name``,
    ``createdAt``) and snake_case otherwise (``tiktok_id``, ``instagram_id``, ``stripe_customer_id``,
    ``consent_marketing`` / ``consent_personalization`` as booleans).  created_at also becomes the message
    ``timestamp``.

Orders -> ``track`` ``"Order Completed"`` / ``"Order Refunded"``
    Same userId / anonymousId rule (orders have no anonymous_id column).  ``properties``: ``order_id``,
    ``total_minor`` (integer minor units), ``currency``, ``revenue`` (major units as a string, e.g.
    ``"49.00"``), ``products`` (``[{"product_id", "name"}]``) when given, ``coupon``, ``discount_minor``,
    then the extra columns.  The email, when given, goes to ``context.traits.email``.  order_id, amount and
    created_at are required in every row.  An empty status means completed; completed, paid, succeeded
    and fulfilled give "Order Completed", refunded gives "Order Refunded", anything else (pending,
    cancelled, partially refunded...) is refused with ``invalid_status``.  Without a currency column the
    currency is USD; with one, an empty cell is ``missing_required`` (guessing would misprice the order).
    A currency is an active ISO 4217 code or one withdrawn recently (HRK, SLL, ZWL...) that exports of
    past orders still carry; anything else is ``invalid_currency``.

Amounts are parsed with ``Decimal``, never float: ``49``, ``49.00``, ``1,299.50``, ``$49.00``,
``1.299,50``, ``49,90 €``.  A lone separator followed by exactly three digits (``1,299``) is read with
the file's convention: a thousands separator in comma-delimited files, a decimal comma in
semicolon-delimited ones.  Negative amounts and more decimals than the currency's ISO 4217 minor unit
has (any for JPY/KRW, three for USD, even zeros) are refused.  Timestamps are ISO 8601, ``YYYY-MM-DD`` or
``YYYY-MM-DD HH:MM[:SS]`` (a trailing ``UTC`` is allowed), UTC unless they carry an offset, and must fall
in 1970-2100; day-first or month-first dates such as ``03/01/2024`` are refused as ambiguous.
"""

from offerloop.events.imports.columns import ImportKind, MappingError, default_mapping, parse_mapping
from offerloop.events.imports.rows import RowError, RowResult, iter_rows

__all__ = [
    "ImportKind",
    "MappingError",
    "RowError",
    "RowResult",
    "default_mapping",
    "iter_rows",
    "parse_mapping",
]
