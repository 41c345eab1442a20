"""The writes of the billing app; each public function is one transaction with an audit row."""
