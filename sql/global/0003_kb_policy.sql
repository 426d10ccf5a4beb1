-- Global schema kind, version 3: may a tenant's agents also search the shared global_docs?
ALTER TABLE public.tenants ADD COLUMN allow_global_docs boolean NOT NULL DEFAULT false;
