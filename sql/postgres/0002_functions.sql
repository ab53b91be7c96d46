-- Up Migration
-- Validation functions used by CHECK constraints, and the one partitioning helper.

-- ISRC (ISO 3901) without hyphens: country (2 letters), registrant (3 alphanumerics), year (2 digits), designation (5 digits).
CREATE FUNCTION cadenza_isrc_valid(isrc text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{2}[0-9]{5}$' $$;

-- UPC-A (12 digits) or EAN-13 (13 digits) with a correct GS1 check digit.
CREATE FUNCTION cadenza_gtin_valid(code text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
  padded text;
  total int := 0;
  i int;
BEGIN
  IF code !~ '^[0-9]{12,13}$' THEN
    RETURN false;
  END IF;
  padded := lpad(code, 13, '0');
  FOR i IN 1..12 LOOP
    total := total + substr(padded, i, 1)::int * CASE WHEN i % 2 = 0 THEN 3 ELSE 1 END;
  END LOOP;
  RETURN (10 - total % 10) % 10 = substr(padded, 13, 1)::int;
END
$$;

-- Time partitioning through pg_partman, on both its 4.x API (Debian 12, PostgreSQL 15) and its
-- 5.x API (PGDG, PostgreSQL 16 in compose): 4.x needs p_type => 'native', 5.x has no such type.
CREATE FUNCTION cadenza_partition_by_month(parent text, control text, premake int DEFAULT 4) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  major int := split_part((SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'), '.', 1)::int;
  start text := to_char(date_trunc('month', now()) - interval '3 months', 'YYYY-MM-DD');
BEGIN
  IF major IS NULL THEN
    RAISE EXCEPTION 'pg_partman is not installed in this database (the stack creates it: npm run stack -- up)';
  ELSIF major >= 5 THEN
    PERFORM partman.create_parent(p_parent_table => parent, p_control => control, p_interval => '1 month',
                                  p_premake => premake, p_start_partition => start);
  ELSE
    PERFORM partman.create_parent(p_parent_table => parent, p_control => control, p_type => 'native',
                                  p_interval => 'monthly', p_premake => premake, p_start_partition => start);
  END IF;
END
$$;

-- Down Migration
DROP FUNCTION cadenza_partition_by_month(text, text, int);
DROP FUNCTION cadenza_gtin_valid(text);
DROP FUNCTION cadenza_isrc_valid(text);
