-- 20300101000000_adopt_tenant_columns
-- prisma-tenancy adopt, step 1 of 19: add the tenant column, nullable, defaulting to the current tenant or else legacy; create the backfill procedure.
-- Tables: Member, Project, tasks
-- Lock: ACCESS EXCLUSIVE, catalog change only (milliseconds, no scan)
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval '5s'; BEGIN
  LOOP
    BEGIN LOCK TABLE "Member", "Project", "tasks" IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', '5s' USING ERRCODE = '55P03'; END IF;
      PERFORM pg_sleep(0.01);
    END;
  END LOOP;
END $lock$;
ALTER TABLE "Member" ADD COLUMN IF NOT EXISTS "tenant_id" TEXT;
ALTER TABLE "Member" ALTER COLUMN "tenant_id" SET DEFAULT COALESCE(NULLIF(current_setting('app.current_tenant'::text, true), ''), 'legacy');
ALTER TABLE "Project" ADD COLUMN IF NOT EXISTS "tenant_id" TEXT;
ALTER TABLE "Project" ALTER COLUMN "tenant_id" SET DEFAULT COALESCE(NULLIF(current_setting('app.current_tenant'::text, true), ''), 'legacy');
ALTER TABLE "tasks" ADD COLUMN IF NOT EXISTS "tenant_id" TEXT;
ALTER TABLE "tasks" ALTER COLUMN "tenant_id" SET DEFAULT COALESCE(NULLIF(current_setting('app.current_tenant'::text, true), ''), 'legacy');
CREATE OR REPLACE PROCEDURE "prisma_tenancy_backfill"(target regclass, tenant_column text, tenant text, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
  total_pages bigint := pg_relation_size(target) / current_setting('block_size')::bigint;
  total_rows bigint;
  pages_per_batch bigint;
  first_page bigint := 0;
  remaining boolean := true;
BEGIN
  IF batch_size IS NULL THEN
    EXECUTE format('UPDATE %s SET %I = %L WHERE %I IS NULL', target, tenant_column, tenant, tenant_column);
    RETURN;
  END IF;
  EXECUTE format('SELECT count(*) FROM %s', target) INTO total_rows;
  pages_per_batch := GREATEST(1, batch_size / GREATEST(1, ceil(total_rows::numeric / GREATEST(total_pages, 1))::bigint));
  WHILE first_page < total_pages LOOP
    EXECUTE format('UPDATE %s SET %I = %L WHERE ctid >= %L::tid AND ctid < %L::tid AND %I IS NULL', target, tenant_column, tenant, format('(%s,0)', first_page), format('(%s,0)', first_page + pages_per_batch), tenant_column);
    COMMIT;
    first_page := first_page + pages_per_batch;
  END LOOP;
  WHILE remaining LOOP
    EXECUTE format('UPDATE %s SET %I = %L WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE %I IS NULL LIMIT %s))', target, tenant_column, tenant, target, tenant_column, batch_size);
    COMMIT;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I IS NULL)', target, tenant_column) INTO remaining;
  END LOOP;
END
$$;

-- 20300101000001_adopt_backfill_Member
-- prisma-tenancy adopt, step 2 of 19: set tenant_id = legacy on every existing row, 100 rows per transaction.
-- Tables: Member
-- Lock: ROW EXCLUSIVE; row locks on about 100 rows at a time, committed batch by batch
-- Resumable: each batch commits, and a rerun only touches rows still without a tenant.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CALL "prisma_tenancy_backfill"('"Member"', 'tenant_id', 'legacy', 100);

-- 20300101000002_adopt_backfill_Project
-- prisma-tenancy adopt, step 3 of 19: set tenant_id = legacy on every existing row, 100 rows per transaction.
-- Tables: Project
-- Lock: ROW EXCLUSIVE; row locks on about 100 rows at a time, committed batch by batch
-- Resumable: each batch commits, and a rerun only touches rows still without a tenant.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CALL "prisma_tenancy_backfill"('"Project"', 'tenant_id', 'legacy', 100);

-- 20300101000003_adopt_backfill_tasks
-- prisma-tenancy adopt, step 4 of 19: set tenant_id = legacy on every existing row, 100 rows per transaction.
-- Tables: tasks
-- Lock: ROW EXCLUSIVE; row locks on about 100 rows at a time, committed batch by batch
-- Resumable: each batch commits, and a rerun only touches rows still without a tenant.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CALL "prisma_tenancy_backfill"('"tasks"', 'tenant_id', 'legacy', 100);

-- 20300101000004_adopt_tenant_not_null_checks
-- prisma-tenancy adopt, step 5 of 19: add CHECK (tenant_id IS NOT NULL) NOT VALID: only new and updated rows are checked.
-- Tables: Member, Project, tasks
-- Lock: ACCESS EXCLUSIVE, catalog change only (milliseconds, no scan)
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval '5s'; BEGIN
  LOOP
    BEGIN LOCK TABLE "Member", "Project", "tasks" IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', '5s' USING ERRCODE = '55P03'; END IF;
      PERFORM pg_sleep(0.01);
    END;
  END LOOP;
END $lock$;
ALTER TABLE "Member" ADD CONSTRAINT "Member_tenant_id_not_null" CHECK ("tenant_id" IS NOT NULL) NOT VALID;
ALTER TABLE "Project" ADD CONSTRAINT "Project_tenant_id_not_null" CHECK ("tenant_id" IS NOT NULL) NOT VALID;
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_tenant_id_not_null" CHECK ("tenant_id" IS NOT NULL) NOT VALID;

-- 20300101000005_adopt_tenant_not_null
-- prisma-tenancy adopt, step 6 of 19: validate the checks, then SET NOT NULL (which the valid check proves without a scan) and drop the checks.
-- Tables: Member, Project, tasks
-- Lock: SHARE UPDATE EXCLUSIVE while validating, then ACCESS EXCLUSIVE for SET NOT NULL without a scan (the valid CHECK proves it)
-- A failure here means a row was written with an explicit NULL tenant since the backfill: run its CALL "prisma_tenancy_backfill"(...) again by hand,
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
ALTER TABLE "Member" VALIDATE CONSTRAINT "Member_tenant_id_not_null";
ALTER TABLE "Project" VALIDATE CONSTRAINT "Project_tenant_id_not_null";
ALTER TABLE "tasks" VALIDATE CONSTRAINT "tasks_tenant_id_not_null";
DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval '5s'; BEGIN
  LOOP
    BEGIN LOCK TABLE "Member", "Project", "tasks" IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', '5s' USING ERRCODE = '55P03'; END IF;
      PERFORM pg_sleep(0.01);
    END;
  END LOOP;
END $lock$;
ALTER TABLE "Member" ALTER COLUMN "tenant_id" SET NOT NULL;
ALTER TABLE "Member" DROP CONSTRAINT "Member_tenant_id_not_null";
ALTER TABLE "Project" ALTER COLUMN "tenant_id" SET NOT NULL;
ALTER TABLE "Project" DROP CONSTRAINT "Project_tenant_id_not_null";
ALTER TABLE "tasks" ALTER COLUMN "tenant_id" SET NOT NULL;
ALTER TABLE "tasks" DROP CONSTRAINT "tasks_tenant_id_not_null";

-- 20300101000006_adopt_index_Member_tenant_id_email_key
-- prisma-tenancy adopt, step 7 of 19: build index Member_tenant_id_email_key concurrently.
-- Tables: Member
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "Member_tenant_id_email_key"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE UNIQUE INDEX CONCURRENTLY "Member_tenant_id_email_key" ON "Member"("tenant_id", "email");

-- 20300101000007_adopt_index_Member_pkey_adopt
-- prisma-tenancy adopt, step 8 of 19: build index Member_pkey_adopt concurrently.
-- Tables: Member
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "Member_pkey_adopt"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE UNIQUE INDEX CONCURRENTLY "Member_pkey_adopt" ON "Member"("tenant_id", "id");

-- 20300101000008_adopt_index_Project_tenant_id_slug_idx
-- prisma-tenancy adopt, step 9 of 19: build index Project_tenant_id_slug_idx concurrently.
-- Tables: Project
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "Project_tenant_id_slug_idx"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE INDEX CONCURRENTLY "Project_tenant_id_slug_idx" ON "Project"("tenant_id", "slug");

-- 20300101000009_adopt_index_Project_tenant_id_id_key
-- prisma-tenancy adopt, step 10 of 19: build index Project_tenant_id_id_key concurrently.
-- Tables: Project
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "Project_tenant_id_id_key"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE UNIQUE INDEX CONCURRENTLY "Project_tenant_id_id_key" ON "Project"("tenant_id", "id");

-- 20300101000010_adopt_index_tasks_tenant_id_project_id_idx
-- prisma-tenancy adopt, step 11 of 19: build index tasks_tenant_id_project_id_idx concurrently.
-- Tables: tasks
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "tasks_tenant_id_project_id_idx"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE INDEX CONCURRENTLY "tasks_tenant_id_project_id_idx" ON "tasks"("tenant_id", "project_id");

-- 20300101000011_adopt_index_tasks_tenant_id_id_key
-- prisma-tenancy adopt, step 12 of 19: build index tasks_tenant_id_id_key concurrently.
-- Tables: tasks
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- If this step fails, PostgreSQL keeps an INVALID index: run DROP INDEX CONCURRENTLY IF EXISTS "tasks_tenant_id_id_key"
-- then `prisma-tenancy migrate resolve --rolled-back <this folder>` and deploy again.
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
CREATE UNIQUE INDEX CONCURRENTLY "tasks_tenant_id_id_key" ON "tasks"("tenant_id", "id");

-- 20300101000012_adopt_keys
-- prisma-tenancy adopt, step 13 of 19: switch primary keys to their composite form on the indexes just built, and foreign keys to ones that include the tenant column (NOT VALID).
-- Tables: Member, tasks
-- Lock: ACCESS EXCLUSIVE, catalog change only (milliseconds, no scan) on every table of the step, referenced tables locked first
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval '5s'; BEGIN
  LOOP
    BEGIN LOCK TABLE "Project", "Member", "tasks" IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', '5s' USING ERRCODE = '55P03'; END IF;
      PERFORM pg_sleep(0.01);
    END;
  END LOOP;
END $lock$;
ALTER TABLE "tasks" DROP CONSTRAINT "tasks_project_id_fkey";
ALTER TABLE "Member" DROP CONSTRAINT "Member_pkey", ADD CONSTRAINT "Member_pkey" PRIMARY KEY USING INDEX "Member_pkey_adopt";
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_tenant_id_project_id_fkey" FOREIGN KEY ("tenant_id", "project_id") REFERENCES "Project"("tenant_id", "id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID;

-- 20300101000013_adopt_validate_foreign_keys
-- prisma-tenancy adopt, step 14 of 19: validate the new foreign keys.
-- Tables: tasks
-- Lock: SHARE UPDATE EXCLUSIVE while it scans: reads and writes go on (ROW SHARE on the referenced table)
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
ALTER TABLE "tasks" VALIDATE CONSTRAINT "tasks_tenant_id_project_id_fkey";

-- 20300101000014_adopt_drop_index_Member_email_key
-- prisma-tenancy adopt, step 15 of 19: drop index "Member_email_key", which the schema no longer has.
-- Tables: Member
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
DROP INDEX CONCURRENTLY IF EXISTS "Member_email_key";

-- 20300101000015_adopt_drop_index_Project_slug_idx
-- prisma-tenancy adopt, step 16 of 19: drop index "Project_slug_idx", which the schema no longer has.
-- Tables: Project
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
DROP INDEX CONCURRENTLY IF EXISTS "Project_slug_idx";

-- 20300101000016_adopt_drop_index_tasks_project_id_idx
-- prisma-tenancy adopt, step 17 of 19: drop index "tasks_project_id_idx", which the schema no longer has.
-- Tables: tasks
-- Lock: SHARE UPDATE EXCLUSIVE while it builds: reads and writes go on
-- A single statement, so that it runs outside a transaction block, as PostgreSQL requires.
DROP INDEX CONCURRENTLY IF EXISTS "tasks_project_id_idx";

-- 20300101000017_adopt_rls
-- Row-level security for tenant tables, generated by `prisma-tenancy generate` from the Prisma schema.
-- Do not edit: change the schema and run `prisma-tenancy generate` again. The lines below record what this
-- migration covers, for `prisma-tenancy generate --check`.
-- prisma-tenancy:table {"kind":"database","revokedTemporary":["tenancy_app"],"signed":false}
-- prisma-tenancy:table {"kind":"tenant","schema":null,"table":"Member","column":"tenant_id","type":"text","setting":"app.current_tenant","grants":["tenancy_app"]}
-- prisma-tenancy:table {"kind":"tenant","schema":null,"table":"Project","column":"tenant_id","type":"text","setting":"app.current_tenant","grants":["tenancy_app"]}
-- prisma-tenancy:table {"kind":"tenant","schema":null,"table":"tasks","column":"tenant_id","type":"text","setting":"app.current_tenant","grants":["tenancy_app"]}
-- prisma-tenancy:table {"kind":"shared","schema":null,"table":"Country","grants":["tenancy_app"]}

-- No temporary tables for the application role: they are session state, which outlives a transaction on a pooled
-- connection and could carry one tenant's rows to the next. PUBLIC holds TEMPORARY on every database by default.
-- The database name is only known where the migration runs.
DO E'BEGIN EXECUTE format(''REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, %I'', current_database(), ''tenancy_app'')\073 END';

-- Member (model Member): rows belong to the tenant in tenant_id.
-- Row-level security on: from now on a row is visible or writable only through a policy.
ALTER TABLE "Member" ENABLE ROW LEVEL SECURITY;
-- Also for the table owner, who would otherwise bypass every policy (apps often connect as the owner).
ALTER TABLE "Member" FORCE ROW LEVEL SECURITY;
-- Restrictive: ANDed with every other policy, so a permissive policy added later can never let another
-- tenant's rows through. USING filters reads, updates and deletes, and WITH CHECK refuses writing a row into another tenant.
DROP POLICY IF EXISTS tenancy_isolation ON "Member";
CREATE POLICY tenancy_isolation ON "Member" AS RESTRICTIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- Permissive: restrictive policies only narrow, and without one permissive policy no row would pass at all.
DROP POLICY IF EXISTS tenancy_access ON "Member";
CREATE POLICY tenancy_access ON "Member" AS PERMISSIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- The application role reads and writes rows, which the policies filter.
GRANT SELECT, INSERT, UPDATE, DELETE ON "Member" TO "tenancy_app";
-- Never TRUNCATE (not subject to row-level security: it would empty every tenant), REFERENCES or TRIGGER.
REVOKE TRUNCATE, REFERENCES, TRIGGER ON "Member" FROM "tenancy_app";
-- id comes from a sequence (SERIAL), and inserting needs USAGE on it.
GRANT USAGE ON SEQUENCE "Member_id_seq" TO "tenancy_app";

-- Project (model Project): rows belong to the tenant in tenant_id.
-- Row-level security on: from now on a row is visible or writable only through a policy.
ALTER TABLE "Project" ENABLE ROW LEVEL SECURITY;
-- Also for the table owner, who would otherwise bypass every policy (apps often connect as the owner).
ALTER TABLE "Project" FORCE ROW LEVEL SECURITY;
-- Restrictive: ANDed with every other policy, so a permissive policy added later can never let another
-- tenant's rows through. USING filters reads, updates and deletes, and WITH CHECK refuses writing a row into another tenant.
DROP POLICY IF EXISTS tenancy_isolation ON "Project";
CREATE POLICY tenancy_isolation ON "Project" AS RESTRICTIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- Permissive: restrictive policies only narrow, and without one permissive policy no row would pass at all.
DROP POLICY IF EXISTS tenancy_access ON "Project";
CREATE POLICY tenancy_access ON "Project" AS PERMISSIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- The application role reads and writes rows, which the policies filter.
GRANT SELECT, INSERT, UPDATE, DELETE ON "Project" TO "tenancy_app";
-- Never TRUNCATE (not subject to row-level security: it would empty every tenant), REFERENCES or TRIGGER.
REVOKE TRUNCATE, REFERENCES, TRIGGER ON "Project" FROM "tenancy_app";

-- tasks (model Task): rows belong to the tenant in tenant_id.
-- Row-level security on: from now on a row is visible or writable only through a policy.
ALTER TABLE "tasks" ENABLE ROW LEVEL SECURITY;
-- Also for the table owner, who would otherwise bypass every policy (apps often connect as the owner).
ALTER TABLE "tasks" FORCE ROW LEVEL SECURITY;
-- Restrictive: ANDed with every other policy, so a permissive policy added later can never let another
-- tenant's rows through. USING filters reads, updates and deletes, and WITH CHECK refuses writing a row into another tenant.
DROP POLICY IF EXISTS tenancy_isolation ON "tasks";
CREATE POLICY tenancy_isolation ON "tasks" AS RESTRICTIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- Permissive: restrictive policies only narrow, and without one permissive policy no row would pass at all.
DROP POLICY IF EXISTS tenancy_access ON "tasks";
CREATE POLICY tenancy_access ON "tasks" AS PERMISSIVE FOR ALL TO PUBLIC
  USING ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''))
  WITH CHECK ("tenant_id" = NULLIF(current_setting('app.current_tenant', true), ''));
-- The application role reads and writes rows, which the policies filter.
GRANT SELECT, INSERT, UPDATE, DELETE ON "tasks" TO "tenancy_app";
-- Never TRUNCATE (not subject to row-level security: it would empty every tenant), REFERENCES or TRIGGER.
REVOKE TRUNCATE, REFERENCES, TRIGGER ON "tasks" FROM "tenancy_app";
-- id comes from a sequence (SERIAL), and inserting needs USAGE on it.
GRANT USAGE ON SEQUENCE "tasks_id_seq" TO "tenancy_app";

-- Country is shared by all tenants: the application role may read it, and writes stay with the owner.
GRANT SELECT ON "Country" TO "tenancy_app";

-- 20300101000018_adopt_tenant_defaults
-- prisma-tenancy adopt, step 19 of 19: give the tenant column the schema's default (no fallback to the default tenant any more) and drop the backfill procedure.
-- Tables: Member, Project, tasks
-- Lock: ACCESS EXCLUSIVE, catalog change only (milliseconds, no scan)
-- One transaction; it gives up instead of queueing every other query behind it.
SET LOCAL lock_timeout = '5s';
DO $lock$ DECLARE deadline timestamptz := clock_timestamp() + interval '5s'; BEGIN
  LOOP
    BEGIN LOCK TABLE "Member", "Project", "tasks" IN ACCESS EXCLUSIVE MODE NOWAIT; RETURN;
    EXCEPTION WHEN lock_not_available THEN
      IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'prisma-tenancy adopt: could not lock the tables of this step within %', '5s' USING ERRCODE = '55P03'; END IF;
      PERFORM pg_sleep(0.01);
    END;
  END LOOP;
END $lock$;
ALTER TABLE "Member" ALTER COLUMN "tenant_id" SET DEFAULT current_setting('app.current_tenant'::text, true);
ALTER TABLE "Project" ALTER COLUMN "tenant_id" SET DEFAULT current_setting('app.current_tenant'::text, true);
ALTER TABLE "tasks" ALTER COLUMN "tenant_id" SET DEFAULT current_setting('app.current_tenant'::text, true);
DROP PROCEDURE IF EXISTS "prisma_tenancy_backfill"(regclass, text, text, integer);
