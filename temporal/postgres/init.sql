-- First start of the compose PostgreSQL: the same role, database and superuser-only extensions
-- that the native stack creates (stack/services/postgres.ts).
CREATE ROLE cadenza LOGIN CREATEDB PASSWORD 'cadenza';
CREATE DATABASE cadenza OWNER cadenza;
\connect cadenza
CREATE SCHEMA IF NOT EXISTS partman AUTHORIZATION cadenza;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
GRANT ALL ON ALL TABLES IN SCHEMA partman TO cadenza;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA partman TO cadenza;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA partman TO cadenza;

-- The template restore drills make their scratch databases from (pg_partman needs a superuser to install).
\connect postgres
CREATE DATABASE cadenza_template OWNER cadenza;
\connect cadenza_template
CREATE SCHEMA IF NOT EXISTS partman AUTHORIZATION cadenza;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
GRANT ALL ON ALL TABLES IN SCHEMA partman TO cadenza;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA partman TO cadenza;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA partman TO cadenza;
\connect postgres
ALTER DATABASE cadenza_template WITH IS_TEMPLATE true;
