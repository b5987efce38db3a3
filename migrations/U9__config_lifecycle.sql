-- ============================================
-- Undo of V9__config_lifecycle: the database as V8 left it.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U9__config_lifecycle.sql
-- Config rows and audit rows written while V9 was in place are data, and stay.
-- squawk-ignore-file ban-drop-function, ban-drop-constraint, prefer-robust-stmts, require-concurrent-index-deletion
-- (why: undoing V9 means dropping what V9 created, and only that; the file runs in one transaction,
--  where CONCURRENTLY cannot run and IF EXISTS would only hide a database that V9 never reached;
--  the tables hold a handful of rows, so the locks last microseconds.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- walltrack.trading_config ----------
DROP TRIGGER trg_trading_config_guard ON walltrack.trading_config;
DROP TRIGGER trg_trading_config_one_active ON walltrack.trading_config;
DROP TRIGGER trg_trading_config_no_truncate ON walltrack.trading_config;
DROP TRIGGER trg_trading_config_audit ON walltrack.trading_config;
DROP TRIGGER trg_trading_config_audit_update ON walltrack.trading_config;
ALTER TABLE walltrack.trading_config
    DROP CONSTRAINT chk_base_position_pct,
    DROP CONSTRAINT chk_max_position_sol,
    DROP CONSTRAINT chk_min_position_sol,
    DROP CONSTRAINT chk_high_conviction_multiplier,
    DROP CONSTRAINT chk_sizing_mode,
    DROP CONSTRAINT chk_risk_per_trade_pct,
    DROP CONSTRAINT chk_max_concurrent_positions,
    DROP CONSTRAINT chk_daily_loss_limit_pct,
    DROP CONSTRAINT chk_max_concentration_token_pct,
    DROP CONSTRAINT chk_max_concentration_cluster_pct,
    DROP CONSTRAINT chk_max_positions_per_cluster,
    DROP CONSTRAINT chk_score_threshold,
    DROP CONSTRAINT chk_high_conviction_threshold,
    DROP CONSTRAINT chk_max_slippage_entry_bps,
    DROP CONSTRAINT chk_max_slippage_exit_bps,
    DROP CONSTRAINT chk_name,
    DROP CONSTRAINT chk_position_sol_order,
    DROP CONSTRAINT chk_threshold_order,
    DROP CONSTRAINT chk_drawdown_reduction_tiers;
DROP INDEX walltrack.uq_trading_config_single_default;
COMMENT ON COLUMN walltrack.trading_config.id IS NULL;
COMMENT ON COLUMN walltrack.trading_config.name IS NULL;
COMMENT ON COLUMN walltrack.trading_config.status IS NULL;
COMMENT ON COLUMN walltrack.trading_config.version IS NULL;
COMMENT ON COLUMN walltrack.trading_config.description IS NULL;
COMMENT ON COLUMN walltrack.trading_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.trading_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.trading_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.trading_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.trading_config.base_position_pct IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_position_sol IS NULL;
COMMENT ON COLUMN walltrack.trading_config.min_position_sol IS NULL;
COMMENT ON COLUMN walltrack.trading_config.high_conviction_multiplier IS NULL;
COMMENT ON COLUMN walltrack.trading_config.sizing_mode IS NULL;
COMMENT ON COLUMN walltrack.trading_config.risk_per_trade_pct IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_concurrent_positions IS NULL;
COMMENT ON COLUMN walltrack.trading_config.daily_loss_limit_pct IS NULL;
COMMENT ON COLUMN walltrack.trading_config.daily_loss_limit_enabled IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_concentration_token_pct IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_concentration_cluster_pct IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_positions_per_cluster IS NULL;
COMMENT ON COLUMN walltrack.trading_config.drawdown_reduction_tiers IS NULL;
COMMENT ON COLUMN walltrack.trading_config.score_threshold IS NULL;
COMMENT ON COLUMN walltrack.trading_config.high_conviction_threshold IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_slippage_entry_bps IS NULL;
COMMENT ON COLUMN walltrack.trading_config.max_slippage_exit_bps IS NULL;

-- ---------- walltrack.scoring_config ----------
DROP TRIGGER trg_scoring_config_guard ON walltrack.scoring_config;
DROP TRIGGER trg_scoring_config_one_active ON walltrack.scoring_config;
DROP TRIGGER trg_scoring_config_no_truncate ON walltrack.scoring_config;
DROP TRIGGER trg_scoring_config_audit ON walltrack.scoring_config;
DROP TRIGGER trg_scoring_config_audit_update ON walltrack.scoring_config;
ALTER TABLE walltrack.scoring_config
    DROP CONSTRAINT chk_wallet_score_weight,
    DROP CONSTRAINT chk_timing_score_weight,
    DROP CONSTRAINT chk_market_score_weight,
    DROP CONSTRAINT chk_cluster_score_weight,
    DROP CONSTRAINT chk_wallet_win_rate_weight,
    DROP CONSTRAINT chk_wallet_avg_pnl_weight,
    DROP CONSTRAINT chk_wallet_consistency_weight,
    DROP CONSTRAINT chk_timing_decay_hours,
    DROP CONSTRAINT chk_timing_freshness_bonus,
    DROP CONSTRAINT chk_market_liquidity_threshold,
    DROP CONSTRAINT chk_market_volume_threshold,
    DROP CONSTRAINT chk_cluster_min_sync_ratio,
    DROP CONSTRAINT chk_cluster_amplification_factor,
    DROP CONSTRAINT chk_name,
    DROP CONSTRAINT chk_score_weights_sum,
    DROP CONSTRAINT chk_wallet_weights_sum;
DROP INDEX walltrack.uq_scoring_config_single_default;
COMMENT ON COLUMN walltrack.scoring_config.id IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.name IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.status IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.version IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.description IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.wallet_score_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.timing_score_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.market_score_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.cluster_score_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.wallet_win_rate_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.wallet_avg_pnl_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.wallet_consistency_weight IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.timing_decay_hours IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.timing_freshness_bonus IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.market_liquidity_threshold IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.market_volume_threshold IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.cluster_min_sync_ratio IS NULL;
COMMENT ON COLUMN walltrack.scoring_config.cluster_amplification_factor IS NULL;

-- ---------- walltrack.discovery_config ----------
DROP TRIGGER trg_discovery_config_guard ON walltrack.discovery_config;
DROP TRIGGER trg_discovery_config_one_active ON walltrack.discovery_config;
DROP TRIGGER trg_discovery_config_no_truncate ON walltrack.discovery_config;
DROP TRIGGER trg_discovery_config_audit ON walltrack.discovery_config;
DROP TRIGGER trg_discovery_config_audit_update ON walltrack.discovery_config;
ALTER TABLE walltrack.discovery_config
    DROP CONSTRAINT chk_run_interval_minutes,
    DROP CONSTRAINT chk_max_wallets_per_run,
    DROP CONSTRAINT chk_min_wallet_age_days,
    DROP CONSTRAINT chk_min_win_rate,
    DROP CONSTRAINT chk_min_trades,
    DROP CONSTRAINT chk_min_avg_pnl_pct,
    DROP CONSTRAINT chk_max_avg_loss_pct,
    DROP CONSTRAINT chk_decay_lookback_days,
    DROP CONSTRAINT chk_decay_threshold,
    DROP CONSTRAINT chk_decay_check_interval_hours,
    DROP CONSTRAINT chk_pump_volume_spike_threshold,
    DROP CONSTRAINT chk_pump_price_spike_threshold,
    DROP CONSTRAINT chk_name;
DROP INDEX walltrack.uq_discovery_config_single_default;
COMMENT ON COLUMN walltrack.discovery_config.id IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.name IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.status IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.version IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.description IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.run_interval_minutes IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.max_wallets_per_run IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.min_wallet_age_days IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.min_win_rate IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.min_trades IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.min_avg_pnl_pct IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.max_avg_loss_pct IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.decay_lookback_days IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.decay_threshold IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.decay_check_interval_hours IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.pump_volume_spike_threshold IS NULL;
COMMENT ON COLUMN walltrack.discovery_config.pump_price_spike_threshold IS NULL;

-- ---------- walltrack.cluster_config ----------
DROP TRIGGER trg_cluster_config_guard ON walltrack.cluster_config;
DROP TRIGGER trg_cluster_config_one_active ON walltrack.cluster_config;
DROP TRIGGER trg_cluster_config_no_truncate ON walltrack.cluster_config;
DROP TRIGGER trg_cluster_config_audit ON walltrack.cluster_config;
DROP TRIGGER trg_cluster_config_audit_update ON walltrack.cluster_config;
ALTER TABLE walltrack.cluster_config
    DROP CONSTRAINT chk_min_cluster_size,
    DROP CONSTRAINT chk_max_cluster_size,
    DROP CONSTRAINT chk_similarity_threshold,
    DROP CONSTRAINT chk_sync_time_window_minutes,
    DROP CONSTRAINT chk_sync_token_overlap_threshold,
    DROP CONSTRAINT chk_leader_min_followers,
    DROP CONSTRAINT chk_leader_time_advantage_minutes,
    DROP CONSTRAINT chk_amplification_max_boost,
    DROP CONSTRAINT chk_name,
    DROP CONSTRAINT chk_cluster_size_order;
DROP INDEX walltrack.uq_cluster_config_single_default;
COMMENT ON COLUMN walltrack.cluster_config.id IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.name IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.status IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.version IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.description IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.min_cluster_size IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.max_cluster_size IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.similarity_threshold IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.sync_time_window_minutes IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.sync_token_overlap_threshold IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.leader_min_followers IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.leader_time_advantage_minutes IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.enable_cluster_amplification IS NULL;
COMMENT ON COLUMN walltrack.cluster_config.amplification_max_boost IS NULL;

-- ---------- walltrack.risk_config ----------
DROP TRIGGER trg_risk_config_guard ON walltrack.risk_config;
DROP TRIGGER trg_risk_config_one_active ON walltrack.risk_config;
DROP TRIGGER trg_risk_config_no_truncate ON walltrack.risk_config;
DROP TRIGGER trg_risk_config_audit ON walltrack.risk_config;
DROP TRIGGER trg_risk_config_audit_update ON walltrack.risk_config;
ALTER TABLE walltrack.risk_config
    DROP CONSTRAINT chk_circuit_breaker_loss_threshold,
    DROP CONSTRAINT chk_circuit_breaker_cooldown_minutes,
    DROP CONSTRAINT chk_max_drawdown_pct,
    DROP CONSTRAINT chk_drawdown_lookback_days,
    DROP CONSTRAINT chk_max_order_attempts,
    DROP CONSTRAINT chk_retry_delay_base_seconds,
    DROP CONSTRAINT chk_retry_delay_multiplier,
    DROP CONSTRAINT chk_emergency_exit_threshold_pct,
    DROP CONSTRAINT chk_name;
DROP INDEX walltrack.uq_risk_config_single_default;
COMMENT ON COLUMN walltrack.risk_config.id IS NULL;
COMMENT ON COLUMN walltrack.risk_config.name IS NULL;
COMMENT ON COLUMN walltrack.risk_config.status IS NULL;
COMMENT ON COLUMN walltrack.risk_config.version IS NULL;
COMMENT ON COLUMN walltrack.risk_config.description IS NULL;
COMMENT ON COLUMN walltrack.risk_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.risk_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.risk_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.risk_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_enabled IS NULL;
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_loss_threshold IS NULL;
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_cooldown_minutes IS NULL;
COMMENT ON COLUMN walltrack.risk_config.max_drawdown_pct IS NULL;
COMMENT ON COLUMN walltrack.risk_config.drawdown_lookback_days IS NULL;
COMMENT ON COLUMN walltrack.risk_config.max_order_attempts IS NULL;
COMMENT ON COLUMN walltrack.risk_config.retry_delay_base_seconds IS NULL;
COMMENT ON COLUMN walltrack.risk_config.retry_delay_multiplier IS NULL;
COMMENT ON COLUMN walltrack.risk_config.emergency_exit_threshold_pct IS NULL;

-- ---------- walltrack.exit_config ----------
DROP TRIGGER trg_exit_config_guard ON walltrack.exit_config;
DROP TRIGGER trg_exit_config_one_active ON walltrack.exit_config;
DROP TRIGGER trg_exit_config_no_truncate ON walltrack.exit_config;
DROP TRIGGER trg_exit_config_audit ON walltrack.exit_config;
DROP TRIGGER trg_exit_config_audit_update ON walltrack.exit_config;
ALTER TABLE walltrack.exit_config
    DROP CONSTRAINT chk_default_max_hold_hours,
    DROP CONSTRAINT chk_stagnation_hours,
    DROP CONSTRAINT chk_stagnation_threshold_pct,
    DROP CONSTRAINT chk_price_collection_interval_seconds,
    DROP CONSTRAINT chk_price_history_retention_days,
    DROP CONSTRAINT chk_name;
DROP INDEX walltrack.uq_exit_config_single_default;
COMMENT ON COLUMN walltrack.exit_config.id IS NULL;
COMMENT ON COLUMN walltrack.exit_config.name IS NULL;
COMMENT ON COLUMN walltrack.exit_config.status IS NULL;
COMMENT ON COLUMN walltrack.exit_config.version IS NULL;
COMMENT ON COLUMN walltrack.exit_config.description IS NULL;
COMMENT ON COLUMN walltrack.exit_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.exit_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.exit_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.exit_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.exit_config.default_strategy_standard_id IS NULL;
COMMENT ON COLUMN walltrack.exit_config.default_strategy_high_conviction_id IS NULL;
COMMENT ON COLUMN walltrack.exit_config.default_max_hold_hours IS NULL;
COMMENT ON COLUMN walltrack.exit_config.stagnation_hours IS NULL;
COMMENT ON COLUMN walltrack.exit_config.stagnation_threshold_pct IS NULL;
COMMENT ON COLUMN walltrack.exit_config.price_collection_interval_seconds IS NULL;
COMMENT ON COLUMN walltrack.exit_config.price_history_retention_days IS NULL;

-- ---------- walltrack.api_config ----------
DROP TRIGGER trg_api_config_guard ON walltrack.api_config;
DROP TRIGGER trg_api_config_one_active ON walltrack.api_config;
DROP TRIGGER trg_api_config_no_truncate ON walltrack.api_config;
DROP TRIGGER trg_api_config_audit ON walltrack.api_config;
DROP TRIGGER trg_api_config_audit_update ON walltrack.api_config;
ALTER TABLE walltrack.api_config
    DROP CONSTRAINT chk_dexscreener_requests_per_minute,
    DROP CONSTRAINT chk_birdeye_requests_per_minute,
    DROP CONSTRAINT chk_jupiter_requests_per_minute,
    DROP CONSTRAINT chk_helius_requests_per_minute,
    DROP CONSTRAINT chk_api_timeout_seconds,
    DROP CONSTRAINT chk_rpc_timeout_seconds,
    DROP CONSTRAINT chk_api_retry_count,
    DROP CONSTRAINT chk_api_retry_backoff_seconds,
    DROP CONSTRAINT chk_price_cache_ttl_seconds,
    DROP CONSTRAINT chk_token_info_cache_ttl_seconds,
    DROP CONSTRAINT chk_name;
DROP INDEX walltrack.uq_api_config_single_default;
COMMENT ON COLUMN walltrack.api_config.id IS NULL;
COMMENT ON COLUMN walltrack.api_config.name IS NULL;
COMMENT ON COLUMN walltrack.api_config.status IS NULL;
COMMENT ON COLUMN walltrack.api_config.version IS NULL;
COMMENT ON COLUMN walltrack.api_config.description IS NULL;
COMMENT ON COLUMN walltrack.api_config.created_at IS NULL;
COMMENT ON COLUMN walltrack.api_config.updated_at IS NULL;
COMMENT ON COLUMN walltrack.api_config.created_by IS NULL;
COMMENT ON COLUMN walltrack.api_config.updated_by IS NULL;
COMMENT ON COLUMN walltrack.api_config.dexscreener_requests_per_minute IS NULL;
COMMENT ON COLUMN walltrack.api_config.birdeye_requests_per_minute IS NULL;
COMMENT ON COLUMN walltrack.api_config.jupiter_requests_per_minute IS NULL;
COMMENT ON COLUMN walltrack.api_config.helius_requests_per_minute IS NULL;
COMMENT ON COLUMN walltrack.api_config.api_timeout_seconds IS NULL;
COMMENT ON COLUMN walltrack.api_config.rpc_timeout_seconds IS NULL;
COMMENT ON COLUMN walltrack.api_config.api_retry_count IS NULL;
COMMENT ON COLUMN walltrack.api_config.api_retry_backoff_seconds IS NULL;
COMMENT ON COLUMN walltrack.api_config.price_cache_ttl_seconds IS NULL;
COMMENT ON COLUMN walltrack.api_config.token_info_cache_ttl_seconds IS NULL;

DROP TRIGGER trg_config_audit_log_append_only ON walltrack.config_audit_log;
DROP TRIGGER trg_config_audit_log_no_truncate ON walltrack.config_audit_log;

DROP FUNCTION walltrack.discard_config(TEXT, UUID, TEXT, TEXT);
DROP FUNCTION walltrack.rollback_config(TEXT, TEXT, TEXT);
DROP FUNCTION walltrack.activate_config(TEXT, UUID, TEXT, TEXT);
DROP FUNCTION walltrack.edit_config(TEXT, UUID, INT, JSONB, TEXT, TEXT);
DROP FUNCTION walltrack.restore_config(TEXT, UUID, TEXT, TEXT, TEXT);
DROP FUNCTION walltrack.clone_config(TEXT, UUID, TEXT, TEXT, TEXT, BOOLEAN);
DROP FUNCTION walltrack.config_lock_row(REGCLASS, UUID);
DROP FUNCTION walltrack.config_begin(TEXT, TEXT, TEXT);
DROP FUNCTION walltrack.refuse_audit_change();
DROP FUNCTION walltrack.audit_config_change();
DROP FUNCTION walltrack.refuse_config_truncate();
DROP FUNCTION walltrack.check_config_has_active();
DROP FUNCTION walltrack.guard_config_row();
DROP FUNCTION walltrack.valid_drawdown_tiers(JSONB);
DROP FUNCTION walltrack.config_changed_fields(JSONB, JSONB, BOOLEAN);
DROP FUNCTION walltrack.config_setting_columns(REGCLASS);
DROP FUNCTION walltrack.config_table(TEXT);
DROP FUNCTION walltrack.config_actor();
