CREATE TABLE "enrolment_tokens" (
	"token_hash" text PRIMARY KEY NOT NULL,
	"federation_id" text NOT NULL,
	"site_name" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"site_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federations" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"spec" jsonb NOT NULL,
	"spec_hash" text NOT NULL,
	"parameter_count" integer NOT NULL,
	"min_sites" integer NOT NULL,
	"round_deadline_seconds" integer NOT NULL,
	"max_samples_per_site" integer NOT NULL,
	"current_model_version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "federations_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "model_versions" (
	"federation_id" text NOT NULL,
	"version" integer NOT NULL,
	"blob_key" text,
	"digest" text,
	"total_samples" integer DEFAULT 0 NOT NULL,
	"round_id" text,
	"mean_loss" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "model_versions_federation_id_version_pk" PRIMARY KEY("federation_id","version")
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"topic" text NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "participants" (
	"round_id" text NOT NULL,
	"site_id" text NOT NULL,
	"state" text NOT NULL,
	"sample_count" integer DEFAULT 0 NOT NULL,
	"metrics" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"reason" text,
	"update_digest" text,
	"update_key" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "participants_round_id_site_id_pk" PRIMARY KEY("round_id","site_id")
);
--> statement-breakpoint
CREATE TABLE "rounds" (
	"id" text PRIMARY KEY NOT NULL,
	"federation_id" text NOT NULL,
	"number" integer NOT NULL,
	"state" text NOT NULL,
	"model_version" integer,
	"opened_at" timestamp with time zone,
	"deadline_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"failure_reason" text,
	"total_samples" integer DEFAULT 0 NOT NULL,
	"aggregate_key" text,
	"aggregate_digest" text,
	"result_model_version" integer,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sites" (
	"id" text PRIMARY KEY NOT NULL,
	"federation_id" text NOT NULL,
	"name" text NOT NULL,
	"state" text NOT NULL,
	"cert_fingerprint" text NOT NULL,
	"cert_pem" text NOT NULL,
	"signing_public_key" text NOT NULL,
	"key_wrap_public_key" text NOT NULL,
	"backend" text,
	"enrolled_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone,
	"revoked_reason" text,
	CONSTRAINT "sites_cert_fingerprint_unique" UNIQUE("cert_fingerprint")
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"round_id" text NOT NULL,
	"site_id" text NOT NULL,
	"staging_key" text NOT NULL,
	"total_bytes" integer NOT NULL,
	"digest" text NOT NULL,
	"received_bytes" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "uploads_round_id_site_id_pk" PRIMARY KEY("round_id","site_id")
);
--> statement-breakpoint
ALTER TABLE "enrolment_tokens" ADD CONSTRAINT "enrolment_tokens_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_versions" ADD CONSTRAINT "model_versions_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "participants" ADD CONSTRAINT "participants_round_id_rounds_id_fk" FOREIGN KEY ("round_id") REFERENCES "public"."rounds"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "participants" ADD CONSTRAINT "participants_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rounds" ADD CONSTRAINT "rounds_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sites" ADD CONSTRAINT "sites_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "outbox_unpublished" ON "outbox" USING btree ("id") WHERE "outbox"."published_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "rounds_federation_number" ON "rounds" USING btree ("federation_id","number");--> statement-breakpoint
CREATE INDEX "rounds_state" ON "rounds" USING btree ("state");--> statement-breakpoint
CREATE UNIQUE INDEX "sites_federation_name" ON "sites" USING btree ("federation_id","name");