-- index ix_artifact_name
CREATE INDEX ix_artifact_name ON artifact (name);

-- index ix_device_model
CREATE INDEX ix_device_model ON device (model);

-- index ix_farm_device_host_id
CREATE INDEX ix_farm_device_host_id ON farm_device (host_id);

-- index ix_farm_device_model
CREATE INDEX ix_farm_device_model ON farm_device (model);

-- index ix_farm_job_status_priority_id
CREATE INDEX ix_farm_job_status_priority_id ON farm_job (status, priority, id);

-- index ix_measurement_artifact_id_device_id_run_id
CREATE INDEX ix_measurement_artifact_id_device_id_run_id ON measurement (artifact_id, device_id, run_id);

-- index ix_measurement_device_id_run_id
CREATE INDEX ix_measurement_device_id_run_id ON measurement (device_id, run_id);

-- index ix_measurement_run_id_artifact_id_device_id
CREATE INDEX ix_measurement_run_id_artifact_id_device_id ON measurement (run_id, artifact_id, device_id);

-- index ix_run_started_at
CREATE INDEX ix_run_started_at ON run (started_at);

-- index ix_run_status
CREATE INDEX ix_run_status ON run (status);

-- table alembic_version
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- table artifact
CREATE TABLE artifact (
	id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	name VARCHAR(1024) NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	path TEXT, 
	role VARCHAR(64), 
	build_id VARCHAR(255), 
	manifest JSON, 
	CONSTRAINT pk_artifact PRIMARY KEY (id), 
	CONSTRAINT uq_artifact_sha256 UNIQUE (sha256)
);

-- table device
CREATE TABLE device (
	id INTEGER NOT NULL, 
	serial VARCHAR(255) NOT NULL, 
	fingerprint VARCHAR(1024) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	abis JSON NOT NULL, 
	model VARCHAR(255), 
	manufacturer VARCHAR(255), 
	soc VARCHAR(255), 
	sdk INTEGER, 
	release VARCHAR(64), 
	cores INTEGER, 
	max_freqs_khz JSON NOT NULL, 
	emulation VARCHAR(255), 
	CONSTRAINT pk_device PRIMARY KEY (id), 
	CONSTRAINT ck_device_kind CHECK (kind IN ('physical', 'emulator', 'emulated')), 
	CONSTRAINT uq_device_serial_fingerprint UNIQUE (serial, fingerprint)
);

-- table farm_device
CREATE TABLE farm_device (
	id INTEGER NOT NULL, 
	"key" VARCHAR(512) NOT NULL, 
	serial VARCHAR(255) NOT NULL, 
	host_id INTEGER NOT NULL, 
	model VARCHAR(255), 
	abis JSON NOT NULL, 
	facts JSON NOT NULL, 
	heartbeat_at DATETIME NOT NULL, 
	holder VARCHAR(32), 
	lease_until DATETIME, 
	CONSTRAINT pk_farm_device PRIMARY KEY (id), 
	CONSTRAINT fk_farm_device_host_id_farm_host FOREIGN KEY(host_id) REFERENCES farm_host (id) ON DELETE CASCADE, 
	CONSTRAINT uq_farm_device_key UNIQUE ("key")
);

-- table farm_host
CREATE TABLE farm_host (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	machine VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	agent_uid VARCHAR(32) NOT NULL, 
	lab_version VARCHAR(64) NOT NULL, 
	heartbeat_s FLOAT NOT NULL, 
	started_at DATETIME NOT NULL, 
	heartbeat_at DATETIME NOT NULL, 
	stopped_at DATETIME, 
	CONSTRAINT pk_farm_host PRIMARY KEY (id), 
	CONSTRAINT uq_farm_host_name UNIQUE (name)
);

-- table farm_job
CREATE TABLE farm_job (
	id INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	priority INTEGER NOT NULL, 
	models JSON NOT NULL, 
	params JSON NOT NULL, 
	trials INTEGER NOT NULL, 
	device_key VARCHAR(512), 
	device_serial VARCHAR(255), 
	device_model VARCHAR(255), 
	abi VARCHAR(64), 
	attempt INTEGER NOT NULL, 
	max_attempts INTEGER NOT NULL, 
	holder VARCHAR(32), 
	host_name VARCHAR(255), 
	device_id INTEGER, 
	lease_until DATETIME, 
	run_id INTEGER, 
	error TEXT, 
	submitted_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, failed_devices JSON, 
	CONSTRAINT pk_farm_job PRIMARY KEY (id), 
	CONSTRAINT ck_farm_job_status CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')), 
	CONSTRAINT fk_farm_job_device_id_farm_device FOREIGN KEY(device_id) REFERENCES farm_device (id) ON DELETE SET NULL, 
	CONSTRAINT fk_farm_job_run_id_run FOREIGN KEY(run_id) REFERENCES run (id) ON DELETE SET NULL
);

-- table farm_model
CREATE TABLE farm_model (
	id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	name VARCHAR(1024) NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	data BLOB NOT NULL, 
	stored_at DATETIME NOT NULL, 
	CONSTRAINT pk_farm_model PRIMARY KEY (id), 
	CONSTRAINT uq_farm_model_sha256 UNIQUE (sha256)
);

-- table measurement
CREATE TABLE measurement (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	device_id INTEGER NOT NULL, 
	artifact_id INTEGER NOT NULL, 
	tool_id INTEGER, 
	content_hash VARCHAR(32) NOT NULL, 
	trial_index INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	started_at DATETIME NOT NULL, 
	duration_s FLOAT NOT NULL, 
	error TEXT, 
	command TEXT, 
	raw_output TEXT NOT NULL, 
	threads INTEGER NOT NULL, 
	num_runs INTEGER NOT NULL, 
	warmup_runs INTEGER NOT NULL, 
	use_xnnpack BOOLEAN NOT NULL, 
	min_secs FLOAT, 
	timeout_s FLOAT NOT NULL, 
	extra_flags JSON NOT NULL, 
	has_result BOOLEAN NOT NULL, 
	runs_count INTEGER, 
	curr_us FLOAT, 
	first_us FLOAT, 
	min_us FLOAT, 
	max_us FLOAT, 
	avg_us FLOAT, 
	std_us FLOAT, 
	p5_us FLOAT, 
	median_us FLOAT, 
	p95_us FLOAT, 
	warmup_stats JSON, 
	init_us FLOAT, 
	first_inference_us FLOAT, 
	warmup_avg_us FLOAT, 
	inference_avg_us FLOAT, 
	peak_memory_init_mb FLOAT, 
	peak_memory_overall_mb FLOAT, 
	memory_delta_init_mb FLOAT, 
	memory_delta_overall_mb FLOAT, 
	periodic_peak_memory_mb FLOAT, 
	reported_threads INTEGER, 
	reported_xnnpack BOOLEAN, 
	xnnpack_applied BOOLEAN, 
	model_size_mb FLOAT, 
	timer_overhead_us FLOAT, 
	runner TEXT, 
	result_warnings JSON NOT NULL, 
	result_extra JSON, 
	nan_fields JSON, 
	state_before JSON, 
	state_after JSON, instructions_first BIGINT, instructions_min BIGINT, instructions_median BIGINT, model_name VARCHAR(1024), 
	CONSTRAINT pk_measurement PRIMARY KEY (id), 
	CONSTRAINT ck_measurement_status CHECK (status IN ('ok', 'failed', 'timeout')), 
	CONSTRAINT fk_measurement_artifact_id_artifact FOREIGN KEY(artifact_id) REFERENCES artifact (id), 
	CONSTRAINT fk_measurement_device_id_device FOREIGN KEY(device_id) REFERENCES device (id), 
	CONSTRAINT fk_measurement_run_id_run FOREIGN KEY(run_id) REFERENCES run (id) ON DELETE CASCADE, 
	CONSTRAINT fk_measurement_tool_id_tool FOREIGN KEY(tool_id) REFERENCES tool (id), 
	CONSTRAINT uq_measurement_content_hash UNIQUE (content_hash)
);

-- table op_stat
CREATE TABLE op_stat (
	id INTEGER NOT NULL, 
	measurement_id INTEGER NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	op_index INTEGER NOT NULL, 
	node_type VARCHAR(255) NOT NULL, 
	name TEXT NOT NULL, 
	avg_ms FLOAT, 
	percent FLOAT, 
	times_called INTEGER, 
	instructions FLOAT, 
	CONSTRAINT pk_op_stat PRIMARY KEY (id), 
	CONSTRAINT ck_op_stat_source CHECK (source IN ('op', 'kernel')), 
	CONSTRAINT fk_op_stat_measurement_id_measurement FOREIGN KEY(measurement_id) REFERENCES measurement (id) ON DELETE CASCADE, 
	CONSTRAINT uq_op_stat_measurement_id_source_op_index UNIQUE (measurement_id, source, op_index)
);

-- table output_check
CREATE TABLE output_check (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	device_id INTEGER NOT NULL, 
	artifact_id INTEGER NOT NULL, 
	model_name VARCHAR(1024) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	inputs INTEGER NOT NULL, 
	precision VARCHAR(16) NOT NULL, 
	tolerance TEXT NOT NULL, 
	reference TEXT NOT NULL, 
	checked_at DATETIME NOT NULL, 
	duration_s FLOAT NOT NULL, 
	max_abs_error FLOAT, 
	max_rel_error FLOAT, 
	top1_agreement FLOAT, 
	baseline_agreement FLOAT, 
	baseline VARCHAR(1024), 
	error TEXT, 
	command TEXT, 
	CONSTRAINT pk_output_check PRIMARY KEY (id), 
	CONSTRAINT ck_output_check_status CHECK (status IN ('ok', 'wrong', 'failed')), 
	CONSTRAINT fk_output_check_run_id_run FOREIGN KEY(run_id) REFERENCES run (id) ON DELETE CASCADE, 
	CONSTRAINT fk_output_check_device_id_device FOREIGN KEY(device_id) REFERENCES device (id), 
	CONSTRAINT fk_output_check_artifact_id_artifact FOREIGN KEY(artifact_id) REFERENCES artifact (id), 
	CONSTRAINT uq_output_check_run_id_device_id_artifact_id UNIQUE (run_id, device_id, artifact_id)
);

-- table run
CREATE TABLE run (
	id INTEGER NOT NULL, 
	uid VARCHAR(32) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	config JSON NOT NULL, 
	lab_version VARCHAR(64) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER, 
	pid_started VARCHAR(64), 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	CONSTRAINT pk_run PRIMARY KEY (id), 
	CONSTRAINT ck_run_kind CHECK (kind IN ('bench', 'run')), 
	CONSTRAINT ck_run_status CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted')), 
	CONSTRAINT uq_run_uid UNIQUE (uid)
);

-- table sample
CREATE TABLE sample (
	measurement_id INTEGER NOT NULL, 
	count INTEGER NOT NULL, 
	encoding VARCHAR(16) NOT NULL, 
	data BLOB NOT NULL, 
	CONSTRAINT pk_sample PRIMARY KEY (measurement_id), 
	CONSTRAINT fk_sample_measurement_id_measurement FOREIGN KEY(measurement_id) REFERENCES measurement (id) ON DELETE CASCADE
);

-- table tool
CREATE TABLE tool (
	id INTEGER NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	abi VARCHAR(64) NOT NULL, 
	version VARCHAR(255), 
	path TEXT, 
	builtin BOOLEAN NOT NULL, 
	source TEXT, 
	CONSTRAINT pk_tool PRIMARY KEY (id), 
	CONSTRAINT uq_tool_sha256 UNIQUE (sha256)
);

