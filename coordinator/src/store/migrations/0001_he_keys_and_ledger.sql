CREATE TABLE "key_bundles" (
	"federation_id" text PRIMARY KEY NOT NULL,
	"custodian_site_id" text NOT NULL,
	"preset_hash" text NOT NULL,
	"public_parameters_key" text NOT NULL,
	"public_parameters_digest" text NOT NULL,
	"custodian_signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ledger_entries" (
	"federation_id" text NOT NULL,
	"index" integer NOT NULL,
	"kind" text NOT NULL,
	"payload" text NOT NULL,
	"previous_digest" text NOT NULL,
	"digest" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ledger_entries_federation_id_index_pk" PRIMARY KEY("federation_id","index")
);
--> statement-breakpoint
CREATE TABLE "wrapped_keys" (
	"federation_id" text NOT NULL,
	"site_id" text NOT NULL,
	"ephemeral_public_key" text NOT NULL,
	"nonce" text NOT NULL,
	"ciphertext" text NOT NULL,
	"wrapped_by_site_id" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "wrapped_keys_federation_id_site_id_pk" PRIMARY KEY("federation_id","site_id")
);
--> statement-breakpoint
ALTER TABLE "federations" ADD COLUMN "key_custodian_site_id" text;--> statement-breakpoint
ALTER TABLE "participants" ADD COLUMN "dataset_commitment" text;--> statement-breakpoint
ALTER TABLE "participants" ADD COLUMN "signed_payload" text;--> statement-breakpoint
ALTER TABLE "participants" ADD COLUMN "site_signature" text;--> statement-breakpoint
ALTER TABLE "participants" ADD COLUMN "receipt_signature" text;--> statement-breakpoint
ALTER TABLE "key_bundles" ADD CONSTRAINT "key_bundles_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wrapped_keys" ADD CONSTRAINT "wrapped_keys_federation_id_federations_id_fk" FOREIGN KEY ("federation_id") REFERENCES "public"."federations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "wrapped_keys" ADD CONSTRAINT "wrapped_keys_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE no action ON UPDATE no action;