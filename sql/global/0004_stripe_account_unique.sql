-- Global schema kind, version 4: a Stripe connected account belongs to at most one tenant
-- (two tenants on one account would see each other's payments and webhooks).
CREATE UNIQUE INDEX tenants_stripe_account_key ON public.tenants (stripe_account_id)
    WHERE stripe_account_id IS NOT NULL;
